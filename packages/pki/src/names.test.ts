import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PkiError } from './errors.js';
import {
  MAX_NAME_LENGTH,
  nameToString,
  parseName,
  parseNameOfKind,
  policyRefusal,
  validateNamePolicy,
  type NamePolicy,
} from './names.js';

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

  it('keeps URI paths as written and lower-cases scheme and host (RFC 3986 §6.2.2.1)', () => {
    assert.deepEqual(parseName('spiffe://example.org/ns/Prod/sa/Web'), {
      kind: 'uri',
      value: 'spiffe://example.org/ns/Prod/sa/Web',
    });
    assert.deepEqual(parseName('HTTPS://Example.ORG/A?b=c'), { kind: 'uri', value: 'https://example.org/A?b=c' });
  });

  it('formats names as kind:value', () => {
    assert.equal(nameToString(parseName('A.example')), 'dns:a.example');
    assert.equal(nameToString(parseName('[::1]')), 'ip:::1');
  });

  it('refuses an empty name', () => {
    assertBadName(() => parseName(''), 'empty');
  });

  it('refuses whitespace and control characters', () => {
    for (const raw of [
      'a .example',
      ' a.example',
      'a.example\n',
      'a.exa\u0000mple',
      'a\u007f.example',
      'a\tb.example',
    ]) {
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
    assertBadName(
      () => parseName(`spiffe://example.org/${'a'.repeat(MAX_NAME_LENGTH)}`),
      `longer than ${MAX_NAME_LENGTH}`,
    );
  });

  it('refuses a wildcard that is not the whole leftmost label, or covers a TLD', () => {
    for (const raw of ['a.*.example', 'a*.example', '*', '*.example', '*.*.example']) {
      assertBadName(() => parseName(raw), 'is not a valid DNS name');
    }
  });

  it('refuses malformed labels', () => {
    for (const raw of ['a..b', '.a.example', '-a.example', 'a-.example', 'under_score.example']) {
      assertBadName(() => parseName(raw), 'is not a valid DNS name');
    }
    assertBadName(() => parseName('é.example'), 'must be ASCII');
  });

  it('refuses a malformed or non-ASCII URI', () => {
    assertBadName(() => parseName('http://exa mple'), 'whitespace');
    assertBadName(() => parseName('https://[zz]/'), 'not an IPv6 address');
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
    assert.match(
      refusal('spiffe://example.org/ns/dev/sa/web', policy) ?? '',
      /URI spiffe:\/\/example\.org\/ns\/dev\/sa\/web is not allowed/,
    );
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

describe('URI rules match whole path segments, never a string prefix (issue 12, hole 6)', () => {
  const policy = { uri: ['spiffe://example.org/ns/payments/*'] };
  const refusal = (raw: string): string | null => policyRefusal(parseName(raw), policy);

  it('allows one or more whole segments below the base', () => {
    assert.equal(refusal('spiffe://example.org/ns/payments/sa/web'), null);
    assert.equal(refusal('spiffe://example.org/ns/payments/web'), null);
  });

  it('refuses the base itself, a partial segment and another authority', () => {
    assert.match(refusal('spiffe://example.org/ns/payments') ?? '', /not allowed/);
    assert.match(refusal('spiffe://example.org/ns/payments-admin/x') ?? '', /not allowed/);
    assert.match(refusal('spiffe://example.org.evil/ns/payments/x') ?? '', /not allowed/);
  });

  it('refuses, before any policy, every name that escaped the old prefix match', () => {
    // Each of these was issued on main under the policy above.
    assertBadName(() => parseName('spiffe://example.org/ns/payments/../admin'), 'dot segment');
    assertBadName(() => parseName('spiffe://example.org/ns/payments/%2e%2e/admin'), 'dot segment');
    assertBadName(() => parseName('spiffe://example.org/ns/payments/%2E%2e/admin'), 'dot segment');
    assertBadName(() => parseName('spiffe://example.org/ns/payments/..%2fadmin'), 'encoded slash');
    assertBadName(() => parseName('spiffe://example.org/ns/payments/x?y=1#f'), 'query or fragment');
  });

  it('refuses a hand-built name the parser would refuse, so no caller can skip parseName, even with no rules', () => {
    for (const value of [
      'spiffe://example.org/ns/payments/../admin',
      'spiffe://example.org/ns/payments/..%2fadmin',
      'spiffe://example.org/ns/payments/x?y=1',
    ]) {
      assert.match(
        policyRefusal({ kind: 'uri', value }, policy) ?? '',
        /dot segment|encoded slash|query or fragment/,
        value,
      );
      assert.match(
        policyRefusal({ kind: 'uri', value }, {}) ?? '',
        /dot segment|encoded slash|query or fragment/,
        value,
      );
    }
    assert.match(policyRefusal({ kind: 'dns', value: '010.20.1.1' }, {}) ?? '', /looks like an IPv4 address/);
    assert.match(policyRefusal({ kind: 'uri', value: 'attacker.test' }, {}) ?? '', /has no scheme/);
  });

  it('applies the same segment rules to other schemes, where a query is allowed but never under "/*"', () => {
    const web = { uri: ['https://id.example/teams/*', 'https://id.example/exact?x=1'] };
    assert.equal(policyRefusal(parseName('https://ID.example/teams/a'), web), null);
    assert.equal(policyRefusal(parseName('https://id.example/exact?x=1'), web), null);
    assert.match(policyRefusal(parseName('https://id.example/teams/a?x=1'), web) ?? '', /not allowed/);
    assert.match(policyRefusal(parseName('https://id.example/teams/a/'), web) ?? '', /not allowed/);
    assert.match(policyRefusal(parseName('https://id.example:8443/teams/a'), web) ?? '', /not allowed/);
    assertBadName(() => parseName('https://id.example/teams/%2e%2E/admin'), 'dot segment');
    assertBadName(() => parseName('https://id.example/teams/a%5cb'), 'encoded slash');
    assertBadName(() => parseName('https://id.example/teams/a#frag'), 'fragment');
  });
});

describe('IP-looking strings are not DNS names (issue 12)', () => {
  it('refuses every name whose last label is a number in some notation a resolver accepts', () => {
    for (const raw of [
      '10.20.1.1.',
      '010.20.1.1',
      '0x0a.1.1.1',
      '10.1',
      '1.0x1',
      '0x0A',
      '4294967295',
      '1e100',
      'a.b.1e9',
      '1.2.3.04',
      '*.a.10',
    ]) {
      assertBadName(() => parseName(raw), 'looks like an IPv4 address');
    }
  });

  it('still accepts host names with digits where resolvers do not read a number', () => {
    for (const raw of ['1e100.net', '10.20.1.1.nip.example', '0x0a.example', 'a1.b2.c3', 'host-10']) {
      assert.equal(parseName(raw).kind, 'dns', raw);
    }
  });
});

describe('parseNameOfKind', () => {
  it('parses the text as the kind it is said to be, never another', () => {
    assert.deepEqual(parseNameOfKind('dns', 'API.example'), { kind: 'dns', value: 'api.example' });
    assert.deepEqual(parseNameOfKind('ip', '[2001:db8::1]'), { kind: 'ip', value: '2001:db8::1' });
    assert.deepEqual(parseNameOfKind('uri', 'spiffe://example.org/x'), {
      kind: 'uri',
      value: 'spiffe://example.org/x',
    });
    assertBadName(() => parseNameOfKind('uri', 'attacker.test'), 'has no scheme');
    assertBadName(() => parseNameOfKind('dns', '10.0.0.1'), 'looks like an IPv4 address');
    assertBadName(() => parseNameOfKind('dns', 'spiffe://example.org/x'), 'is not a valid DNS name');
    assertBadName(() => parseNameOfKind('ip', 'attacker.test'), 'is not an IP address');
    assertBadName(() => parseNameOfKind('ip', '010.0.0.1'), 'is not an IP address');
  });
});

describe('validateNamePolicy', () => {
  it('accepts well-formed patterns', () => {
    assert.doesNotThrow(() =>
      validateNamePolicy({
        dns: ['*.svc.internal', '.corp.example', 'api.example'],
        ip: ['10.0.0.0/8', '::1'],
        uri: ['spiffe://example.org/*'],
      }),
    );
  });

  it('refuses a bad CIDR', () => {
    assertBadName(
      () => validateNamePolicy({ ip: ['10.0.0.0/33'] }),
      '"10.0.0.0/33" is not an IP address or CIDR range',
    );
    assertBadName(() => validateNamePolicy({ ip: ['10.0.0'] }), 'CIDR');
  });

  it('refuses a URI pattern without a scheme', () => {
    assertBadName(() => validateNamePolicy({ uri: ['example.org/*'] }), 'has no scheme');
  });

  it('refuses a "*" that is not a whole last path segment, and a base a name could not have', () => {
    for (const p of [
      'spiffe://example.org/ns/pay*',
      'spiffe://example.org/*/x',
      'https://*.example/',
      'spiffe://example.org/ns//*',
      'https://x.example/a?q/*',
    ]) {
      assertBadName(
        () => validateNamePolicy({ uri: [p] }),
        /may use "\*" only as a whole last path segment|has "\/\/" before|has a query|empty segment/,
      );
    }
    for (const p of ['spiffe://example.org/ns/../*', 'spiffe://Example.org/*', 'spiffe://example.org/a#f']) {
      assertBadName(() => validateNamePolicy({ uri: [p] }), 'is refused');
    }
  });

  it('refuses a malformed DNS pattern', () => {
    assertBadName(() => validateNamePolicy({ dns: ['*.a..b'] }), 'is not a valid DNS name');
    assertBadName(() => validateNamePolicy({ dns: ['bad_name.example'] }), 'is not a valid DNS name');
  });
});
