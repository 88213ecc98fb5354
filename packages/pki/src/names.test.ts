import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PkiError } from './errors.js';
import { MAX_NAME_LENGTH, nameToString, parseName, policyRefusal, validateNamePolicy, type NamePolicy } from './names.js';

function assertBadName(fn: () => unknown, fragment: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof PkiError, `expected PkiError, got ${String(err)}`);
    assert.equal(err.code, 'badName');
    if (typeof fragment === 'string') assert.ok(err.message.includes(fragment), `message was: ${err.message}`);
    else assert.match(err.message, fragment);
    return true;
  });
}

describe('parseName', () => {
  it('classifies and canonicalises DNS names', () => {
    assert.deepEqual(parseName('API.Internal.Example'), { kind: 'dns', value: 'api.internal.example' });
    assert.deepEqual(parseName('api.internal.example.'), { kind: 'dns', value: 'api.internal.example' });
    assert.deepEqual(parseName('localhost'), { kind: 'dns', value: 'localhost' });
    assert.deepEqual(parseName('*.svc.internal'), { kind: 'dns', value: '*.svc.internal' });
    assert.deepEqual(parseName('xn--bcher-kva.example'), { kind: 'dns', value: 'xn--bcher-kva.example' });
  });

  it('classifies IP addresses, canonical, with IPv6 optionally in brackets', () => {
    assert.deepEqual(parseName('10.0.0.1'), { kind: 'ip', value: '10.0.0.1' });
    assert.deepEqual(parseName('[2001:DB8:0::1]'), { kind: 'ip', value: '2001:db8::1' });
    assert.deepEqual(parseName('2001:db8:0:0:0:0:0:1'), { kind: 'ip', value: '2001:db8::1' });
    assert.deepEqual(parseName('::1'), { kind: 'ip', value: '::1' });
  });

  it('keeps URIs verbatim, since relying parties compare SPIFFE IDs byte for byte', () => {
    assert.deepEqual(parseName('spiffe://Example.org/ns/Prod/sa/Web'), { kind: 'uri', value: 'spiffe://Example.org/ns/Prod/sa/Web' });
    assert.deepEqual(parseName('https://example.org/a?b=c'), { kind: 'uri', value: 'https://example.org/a?b=c' });
  });

  it('formats names as kind:value', () => {
    assert.equal(nameToString(parseName('A.example')), 'dns:a.example');
    assert.equal(nameToString(parseName('[::1]')), 'ip:::1');
  });

  it('refuses an empty name', () => {
    assertBadName(() => parseName(''), 'empty');
  });

  it('refuses whitespace and control characters', () => {
    for (const raw of ['a .example', ' a.example', 'a.example\n', 'a.exa\u0000mple', 'a\u007f.example', 'a\tb.example']) {
      assertBadName(() => parseName(raw), 'whitespace or control characters');
    }
  });

  it('refuses a label longer than 63 characters', () => {
    assert.equal(parseName(`${'a'.repeat(63)}.example`).value, `${'a'.repeat(63)}.example`);
    assertBadName(() => parseName(`${'a'.repeat(64)}.example`), 'is not a valid DNS name');
  });

  it('refuses a DNS name longer than 253 characters', () => {
    const label = 'a'.repeat(61);
    const longest = [label, label, label, label, 'abcde'].join('.');
    assert.equal(longest.length, 253);
    assert.equal(parseName(`${longest}.`).value, longest);
    const long = [label, label, label, label, 'abcdef'].join('.');
    assert.equal(long.length, 254);
    assertBadName(() => parseName(long), 'longer than 253');
  });

  it(`refuses anything longer than ${MAX_NAME_LENGTH} characters before looking at it`, () => {
    assertBadName(() => parseName(`spiffe://example.org/${'a'.repeat(MAX_NAME_LENGTH)}`), `longer than ${MAX_NAME_LENGTH}`);
  });

  it('refuses a wildcard that is not the whole leftmost label, or covers a TLD', () => {
    for (const raw of ['a.*.example', 'a*.example', '*', '*.example', '*.*.example']) {
      assertBadName(() => parseName(raw), 'is not a valid DNS name');
    }
  });

  it('refuses malformed labels', () => {
    for (const raw of ['a..b', '.a.example', '-a.example', 'a-.example', 'under_score.example', 'é.example']) {
      assertBadName(() => parseName(raw), 'is not a valid DNS name');
    }
  });

  it('refuses a malformed or non-ASCII URI', () => {
    assertBadName(() => parseName('http://exa mple'), 'whitespace');
    assertBadName(() => parseName('https://[zz]/'), 'is not a valid URI');
    assertBadName(() => parseName('spiffe://example.org/é'), 'must be ASCII');
  });
});

describe('policyRefusal', () => {
  const refusal = (raw: string, policy: NamePolicy): string | null => policyRefusal(parseName(raw), policy);

  it('allows every name when no rule exists', () => {
    for (const raw of ['a.example', '10.0.0.1', '::1', 'spiffe://x/y']) {
      assert.equal(refusal(raw, {}), null);
      assert.equal(refusal(raw, { dns: [], ip: [], uri: [] }), null);
    }
  });

  it('*.svc.internal matches exactly one extra label', () => {
    const policy = { dns: ['*.svc.internal'] };
    assert.equal(refusal('a.svc.internal', policy), null);
    assert.equal(refusal('A.SVC.internal', policy), null);
    assert.match(refusal('a.b.svc.internal', policy) ?? '', /DNS name a\.b\.svc\.internal is not allowed/);
    assert.match(refusal('svc.internal', policy) ?? '', /not allowed/);
    assert.match(refusal('asvc.internal', policy) ?? '', /not allowed/);
  });

  it('.svc.internal matches any depth below, but not svc.internal itself', () => {
    const policy = { dns: ['.svc.internal'] };
    assert.equal(refusal('a.svc.internal', policy), null);
    assert.equal(refusal('a.b.c.svc.internal', policy), null);
    assert.match(refusal('svc.internal', policy) ?? '', /not allowed/);
    assert.match(refusal('xsvc.internal', policy) ?? '', /not allowed/);
  });

  it('an exact DNS rule matches only that name, case-insensitively', () => {
    const policy = { dns: ['API.example'] };
    assert.equal(refusal('api.example', policy), null);
    assert.match(refusal('x.api.example', policy) ?? '', /not allowed/);
  });

  it('IP rules are CIDR ranges or single addresses', () => {
    const policy = { ip: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'] };
    assert.equal(refusal('10.20.30.40', policy), null);
    assert.equal(refusal('2001:db8:1::5', policy), null);
    assert.equal(refusal('192.0.2.7', policy), null);
    assert.match(refusal('192.0.2.8', policy) ?? '', /IP address 192\.0\.2\.8 is not allowed/);
    assert.match(refusal('2001:db9::1', policy) ?? '', /not allowed/);
  });

  it('URI rules are exact, or a prefix when they end in *', () => {
    const policy = { uri: ['spiffe://example.org/ns/prod/*', 'https://exact.example/'] };
    assert.equal(refusal('spiffe://example.org/ns/prod/sa/web', policy), null);
    assert.equal(refusal('https://exact.example/', policy), null);
    assert.match(refusal('spiffe://example.org/ns/dev/sa/web', policy) ?? '', /URI spiffe:\/\/example\.org\/ns\/dev\/sa\/web is not allowed/);
    assert.match(refusal('https://exact.example/x', policy) ?? '', /not allowed/);
  });

  it('refuses a kind of name no rule covers once any rule exists', () => {
    const policy = { ip: ['10.0.0.0/8'] };
    assert.equal(refusal('a.example', policy), 'DNS name a.example is not allowed (allowed: no DNS names)');
    assert.equal(refusal('spiffe://x/y', policy), 'URI spiffe://x/y is not allowed (allowed: no URIs)');
    assert.equal(refusal('::1', { dns: ['a.example'] }), 'IP address ::1 is not allowed (allowed: no IP addresses)');
  });

  it('names the allowed rules in the refusal', () => {
    assert.equal(
      refusal('db.example', { dns: ['*.svc.internal', '.corp.example'] }),
      'DNS name db.example is not allowed (allowed: *.svc.internal, .corp.example)',
    );
  });
});

describe('validateNamePolicy', () => {
  it('accepts well-formed patterns', () => {
    assert.doesNotThrow(() =>
      validateNamePolicy({ dns: ['*.svc.internal', '.corp.example', 'api.example'], ip: ['10.0.0.0/8', '::1'], uri: ['spiffe://example.org/*'] }),
    );
  });

  it('refuses a bad CIDR', () => {
    assertBadName(() => validateNamePolicy({ ip: ['10.0.0.0/33'] }), '"10.0.0.0/33" is not an IP address or CIDR range');
    assertBadName(() => validateNamePolicy({ ip: ['10.0.0'] }), 'CIDR');
  });

  it('refuses a URI pattern without a scheme', () => {
    assertBadName(() => validateNamePolicy({ uri: ['example.org/*'] }), 'needs a scheme');
  });

  it('refuses a malformed DNS pattern', () => {
    assertBadName(() => validateNamePolicy({ dns: ['*.a..b'] }), 'is not a valid DNS name');
    assertBadName(() => validateNamePolicy({ dns: ['bad_name.example'] }), 'is not a valid DNS name');
  });
});
