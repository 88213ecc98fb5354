import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PkiError } from './errors.js';
import { parseUri, parseUriPattern, uriPatternMatches } from './uri.js';

function refused(raw: string, fragment: string): void {
  assert.throws(
    () => parseUri(raw),
    (err: unknown) => {
      assert.ok(err instanceof PkiError, `expected PkiError for ${raw}, got ${String(err)}`);
      assert.equal(err.code, 'badName');
      assert.ok(err.message.includes(fragment), `for ${raw} the message was: ${err.message}`);
      return true;
    },
  );
}

describe('parseUri', () => {
  it('splits a URI into RFC 3986 components and whole segments', () => {
    const u = parseUri('spiffe://example.org/ns/prod/sa/web');
    assert.equal(u.scheme, 'spiffe');
    assert.equal(u.authority, 'example.org');
    assert.equal(u.path, '/ns/prod/sa/web');
    assert.deepEqual(u.segments, ['ns', 'prod', 'sa', 'web']);
    assert.equal(u.query, null);
    assert.deepEqual(parseUri('urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66').segments, [
      'uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66',
    ]);
    assert.equal(parseUri('https://[2001:DB8::1]:8443/a').authority, '[2001:db8::1]:8443');
  });

  it('canonicalises scheme and host case and percent-encoding hex (RFC 3986 §6.2.2.1)', () => {
    assert.equal(parseUri('HTTPS://Id.Example/A%2a?q=%3d').text, 'https://id.example/A%2A?q=%3D');
  });

  it('refuses dot segments, raw or percent-encoded in any case', () => {
    for (const raw of [
      'https://a.example/x/../y',
      'https://a.example/x/./y',
      'https://a.example/..',
      'https://a.example/%2e%2e/y',
      'https://a.example/.%2E/y',
      'https://a.example/%2E',
      'urn:a/../b',
    ]) {
      refused(raw, 'dot segment');
    }
  });

  it('refuses encoded slashes and backslashes, and raw backslashes', () => {
    for (const raw of [
      'https://a.example/x%2fy',
      'https://a.example/x%2Fy',
      'https://a.example/..%2fadmin',
      'https://a.example/x%5cy',
      'https://a.example/x%5Cy',
    ])
      refused(raw, 'encoded slash');
    refused('https://a.example/x\\y', 'RFC 3986 §2 does not allow');
  });

  it('refuses what a normaliser would rewrite: encoded unreserved characters, controls, empty segments', () => {
    refused('https://a.example/%61dmin', 'write it as is');
    refused('https://a.example/a%00', 'control character');
    refused('https://a.example/a//b', 'empty path segment');
    refused('https://a.example/%zz', 'two hex digits');
    refused('https://a.example/%4', 'two hex digits');
  });

  it('refuses userinfo, bad ports, non-IPv6 brackets, encoded hosts, fragments and relative references', () => {
    refused('https://id.example@evil.example/x', 'userinfo');
    refused('https://a.example:/x', 'port');
    refused('https://a.example:99999999/x', 'port');
    refused('https://[10.0.0.1]/x', 'IPv6');
    refused('https://a%2eexample/x', 'percent-encoded host');
    refused('https://a.example/x#frag', 'fragment');
    refused('attacker.test', 'has no scheme');
    refused('//a.example/x', 'has no scheme');
    refused('https://', 'no host');
    refused('urn:', 'nothing after its scheme');
  });

  it('enforces the SPIFFE ID rules for spiffe: URIs', () => {
    refused('spiffe://Example.org/x', 'lower-case');
    refused('spiffe://example.org:8443/x', 'no port');
    refused('spiffe://user@example.org/x', 'userinfo');
    refused('spiffe://example.org/x?y=1', 'query or fragment');
    refused('spiffe://example.org/x#f', 'query or fragment');
    refused('spiffe://example.org', 'needs a path');
    refused('spiffe://example.org/', 'trailing "/"');
    refused('spiffe://example.org/a/', 'trailing "/"');
    refused('spiffe://example.org/a%41', 'write it as is');
    refused('spiffe://example.org/a%20b', 'may hold only letters');
    refused('spiffe://example.org/a:b', 'may hold only letters');
    refused('spiffe:example.org/a', 'needs a trust domain');
    refused(`spiffe://${'a'.repeat(256)}/x`, 'longer than 255');
    assert.equal(parseUri('SPIFFE://example.org/My_Svc-1.2').text, 'spiffe://example.org/My_Svc-1.2');
    assert.equal(parseUri('spiffe://example.org', { base: true }).path, '');
  });
});

describe('parseUriPattern and uriPatternMatches', () => {
  const matches = (name: string, pattern: string): boolean =>
    uriPatternMatches(parseUri(name), parseUriPattern(pattern));

  it('BASE/* matches one or more whole, non-empty segments below BASE, with the same scheme and authority', () => {
    assert.equal(matches('spiffe://example.org/ns/a', 'spiffe://example.org/*'), true);
    assert.equal(matches('spiffe://example.org/ns/payments/a/b', 'spiffe://example.org/ns/payments/*'), true);
    assert.equal(matches('spiffe://example.org/ns/payments', 'spiffe://example.org/ns/payments/*'), false);
    assert.equal(matches('spiffe://example.org/ns/paymentsx/a', 'spiffe://example.org/ns/payments/*'), false);
    assert.equal(matches('spiffe://other.org/ns/payments/a', 'spiffe://example.org/ns/payments/*'), false);
    assert.equal(matches('https://example.org/ns/payments/a', 'spiffe://example.org/ns/payments/*'), false);
    assert.equal(matches('urn:acme:team/a', 'urn:acme:team/*'), true);
  });

  it('an exact pattern matches only the same canonical URI', () => {
    assert.equal(matches('HTTPS://Id.Example/a', 'https://id.example/a'), true);
    assert.equal(matches('https://id.example/a/', 'https://id.example/a'), false);
  });
});

describe('parseUri on arbitrary text', () => {
  const chars = fc.constantFrom(...'aZ09-._~:/?#[]@!$&\'()*+,;=%2eEfF5c\\ "<>`{|}^'.split(''));
  const text = fc
    .tuple(fc.constantFrom('spiffe://', 'https://', 'urn:', 'HTTPS://', ''), fc.string({ unit: chars, maxLength: 40 }))
    .map(([a, b]) => a + b);

  it('throws only badName, and what it accepts is canonical: parsing the result again changes nothing', () => {
    fc.assert(
      fc.property(text, (raw) => {
        let u;
        try {
          u = parseUri(raw);
        } catch (err) {
          assert.ok(
            err instanceof PkiError && err.code === 'badName',
            `parseUri(${JSON.stringify(raw)}) threw ${String(err)}`,
          );
          return;
        }
        assert.equal(parseUri(u.text).text, u.text, raw);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('parseUri against an independent normaliser', () => {
  // WHATWG URL (Node's URL) removes dot segments, decodes %2e, and turns "\" into "/" in special
  // schemes: whatever we accept must come out of it unchanged, or a relying party that normalises
  // would read another identity than the one our policy matched.
  const pieces = [
    'a',
    'B',
    '.',
    '..',
    '%2e',
    '%2E',
    '%2f',
    '%5C',
    '%41',
    '%25',
    '',
    ';',
    '=',
    ':',
    '@',
    '~',
    '!',
    '%20',
    '\\',
    '?',
    '#',
  ];
  const arb = fc.tuple(
    fc.constantFrom('https://id.example', 'spiffe://example.org'),
    fc.array(fc.array(fc.constantFrom(...pieces), { maxLength: 3 }), { minLength: 1, maxLength: 5 }),
  );

  it('never accepts a URI whose path a WHATWG parser would rewrite', () => {
    fc.assert(
      fc.property(arb, ([origin, segments]) => {
        const raw = `${origin}/${segments.map((s) => s.join('')).join('/')}`;
        let u;
        try {
          u = parseUri(raw);
        } catch (err) {
          assert.ok(err instanceof PkiError, `parseUri threw ${String(err)}`);
          return;
        }
        const w = new URL(u.text);
        assert.equal(w.pathname, u.path, `${raw} reads as ${w.href}`);
        assert.equal(w.search, u.query === null || u.query === '' ? '' : `?${u.query}`, raw);
        assert.equal(w.hash, '', raw);
      }),
      { numRuns: 5000 },
    );
  });
});
