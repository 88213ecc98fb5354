// Per-provisioner certificate templates against a real `shortleaf serve`: a SPIFFE ID built from
// token claims (`shortleaf token --claim`), subject fields and EKUs, judged by OpenSSL; every
// mistake in a template stops start-up naming its key; every unusable claim is a 4xx that issues
// nothing.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { shortleaf, shortleafOk, tempDir } from './helpers/cli.js';
import { startDevCa, type DevCa } from './helpers/dev-ca.js';
import { extension, extensionHeading, openssl, x509TextOfFile } from './helpers/openssl.js';
import { serveExpectingFailure } from './helpers/server.js';

const dir = tempDir();
const f = (name: string) => dir.file(name);
const data = f('data');
const servicesKey = f('services.jwk');
after(() => dir.remove());

const TEMPLATE = {
  subject: { organization: 'Example Corp', organizationalUnit: 'payments', country: 'US' },
  extKeyUsage: ['serverAuth', 'clientAuth'],
  uris: ['spiffe://example.org/ns/{namespace}/sa/{service}'],
  lifetime: '8h',
};

function config(name: string, templates: Record<string, unknown>): string {
  writeFileSync(f(name), JSON.stringify({ templates }));
  return f(name);
}

before(async () => {
  await shortleafOk(['init', '--data', data]);
  // The policy allows SPIFFE IDs in the prod namespace only, and DNS names under prod.example.
  await shortleafOk([
    'provisioner',
    'add',
    'services',
    '--data',
    data,
    '--key-out',
    servicesKey,
    '--allow-dns',
    '*.prod.example',
    '--allow-uri',
    'spiffe://example.org/ns/prod/*',
    '--max-lifetime',
    '12h',
  ]);
});

describe('a template mistake stops serve with exit 1, naming it', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    [
      'an unknown template field',
      { services: { ...TEMPLATE, colour: 'blue' } },
      /unknown template key "templates\.services\.colour" \(known keys: subject, extKeyUsage, uris, dnsNames, emails, lifetime\)/,
    ],
    [
      'a CA key',
      { services: { ...TEMPLATE, isCa: true } },
      /template key "templates\.services\.isCa" is not allowed: templates cannot make CA certificates/,
    ],
    [
      'an unknown subject field',
      { services: { subject: { org: 'x' } } },
      /unknown template key "templates\.services\.subject\.org"/,
    ],
    [
      'a forbidden EKU',
      { services: { extKeyUsage: ['serverAuth', 'OCSPSigning'] } },
      /"templates\.services\.extKeyUsage\[1\]": extended key usage OCSPSigning is refused/,
    ],
    [
      'a malformed placeholder',
      { services: { uris: ['spiffe://example.org/ns/{namespace/sa/x'] } },
      /"templates\.services\.uris\[0\]": "\{" without a matching "\}"/,
    ],
    [
      'a bad lifetime',
      { services: { lifetime: 'forever' } },
      /"templates\.services\.lifetime": "forever" is not a duration/,
    ],
    [
      'a template for a provisioner that does not exist',
      { nobody: TEMPLATE },
      /template "templates\.nobody" is for provisioner "nobody", which does not exist/,
    ],
    [
      "a lifetime outside the provisioner's policy",
      { services: { ...TEMPLATE, lifetime: '2d' } },
      /"templates\.services\.lifetime" \(2d\) is outside provisioner services's policy: 1m to 12h/,
    ],
    [
      'URIs on an ACME provisioner',
      { acme: { uris: TEMPLATE.uris } },
      /"templates\.acme\.uris" is not allowed: acme is an ACME provisioner, whose names must be proven by challenges/,
    ],
  ];
  for (const [what, templates, expected] of cases) {
    it(what, async () => {
      const r = await serveExpectingFailure({
        data,
        args: ['--config', config(`bad-${what.replace(/\W+/g, '-')}.json`, templates)],
        timeoutMs: 60_000,
      });
      assert.equal(r.listened, false, r.stderr);
      assert.equal(r.timedOut, false, `serve must exit on its own:\n${r.stderr}`);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, expected);
    });
  }
});

describe('shortleaf token --claim', () => {
  it('refuses registered claim names and malformed flags with a usage error', async () => {
    for (const [flag, message] of [
      ['sub=api', /--claim sub=… is refused: "sub" is a registered claim/],
      ['sans=x', /"sans" is a registered claim/],
      ['namespace', /--claim takes KEY=VALUE/],
    ] as const) {
      const r = await shortleaf([
        'token',
        'api.prod.example',
        '--provisioner',
        'services',
        '--key',
        servicesKey,
        '--ca',
        'https://localhost:1',
        '--claim',
        flag,
      ]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '', 'no token is printed');
    }
  });
});

describe('issuing with a template', () => {
  let ca: DevCa | undefined;
  const dev = () => {
    assert.ok(ca, 'the server did not start');
    return ca;
  };

  before(async () => {
    ca = await startDevCa(dir.path, {
      init: false,
      serve: { args: ['--config', config('templates.json', { services: TEMPLATE })] },
    });
  });
  after(async () => {
    await ca?.server.stop();
  });

  const token = async (claims: string[]) =>
    (
      await shortleafOk([
        'token',
        'api.prod.example',
        '--provisioner',
        'services',
        '--key',
        servicesKey,
        '--ca',
        dev().server.publicUrl,
        ...claims.flatMap((c) => ['--claim', c]),
      ])
    ).stdout.trim();
  const certificate = async (tok: string, name: string) =>
    shortleaf([
      'certificate',
      'api.prod.example',
      '--ca',
      dev().server.publicUrl,
      '--root',
      dev().roots,
      '--token',
      tok,
      '--cert',
      f(`${name}.pem`),
      '--key',
      f(`${name}.key`),
    ]);
  const certCount = async () =>
    (await shortleafOk(['certs', 'list', '--data', data])).stdout.split('\n').filter((l) => l.trim() !== '').length;

  it('puts the subject fields, the EKUs and the SPIFFE ID from the claims into a CA:FALSE leaf', async () => {
    const r = await certificate(await token(['namespace=prod', 'service=api']), 'spiffe');
    assert.equal(r.code, 0, r.stderr);
    const text = await x509TextOfFile(f('spiffe.pem'));
    assert.match(text, /Subject: C = US, O = Example Corp, OU = payments, CN = api\.prod\.example\n/);
    assert.equal(
      extension(text, 'X509v3 Extended Key Usage'),
      'TLS Web Server Authentication, TLS Web Client Authentication',
    );
    assert.equal(
      extension(text, 'X509v3 Subject Alternative Name'),
      'DNS:api.prod.example, URI:spiffe://example.org/ns/prod/sa/api',
    );
    assert.equal(extensionHeading(text, 'X509v3 Basic Constraints'), 'X509v3 Basic Constraints: critical');
    assert.equal(extension(text, 'X509v3 Basic Constraints'), 'CA:FALSE');
    // The template's 8 h, not the policy's 12 h maximum nor the 24 h default (one minute backdated).
    const dates = await openssl(['x509', '-in', f('spiffe.pem'), '-noout', '-startdate', '-enddate']);
    const [start, end] = [/notBefore=(.*)/.exec(dates)![1]!, /notAfter=(.*)/.exec(dates)![1]!].map((d) =>
      Date.parse(d),
    );
    assert.equal(end! - start!, 8 * 3_600_000 + 60_000);
    // And OpenSSL accepts it as a TLS client certificate under our chain.
    await openssl(['x509', '-in', f('spiffe.pem'), '-out', f('spiffe-leaf.pem')]);
    const verified = await openssl([
      'verify',
      '-purpose',
      'sslclient',
      '-CAfile',
      dev().roots,
      '-untrusted',
      dev().intermediates,
      f('spiffe-leaf.pem'),
    ]);
    assert.equal(verified.trim(), `${f('spiffe-leaf.pem')}: OK`);
  });

  for (const [what, claims, type, status, detail] of [
    [
      'a claim value that climbs out of its segment',
      ['namespace=prod', 'service=../x'],
      'templateClaimInvalid',
      400,
      /the token claim "service" cannot go into templates\.services\.uris\[0\]/,
    ],
    [
      'a claim value with a slash',
      ['namespace=a/b', 'service=api'],
      'templateClaimInvalid',
      400,
      /the token claim "namespace" cannot go into/,
    ],
    [
      'a missing claim',
      ['namespace=prod'],
      'templateClaimMissing',
      400,
      /the token has no "service" claim, which templates\.services\.uris\[0\]/,
    ],
    [
      "a SPIFFE ID outside the provisioner's policy",
      ['namespace=dev', 'service=api'],
      'nameNotAllowed',
      403,
      /URI spiffe:\/\/example\.org\/ns\/dev\/sa\/api is not allowed/,
    ],
  ] as const) {
    it(`${what}: HTTP ${status} ${type}, and nothing is issued`, async () => {
      const before = await certCount();
      const name = `refused-${type}-${claims.join('-').replace(/\W+/g, '_')}`;
      const r = await certificate(await token([...claims]), name);
      assert.equal(r.code, 1, r.stderr);
      assert.ok(r.stderr.includes(`(urn:shortleaf:problem:${type}, HTTP ${status})`), r.stderr);
      assert.match(r.stderr, detail);
      assert.equal(existsSync(f(`${name}.pem`)), false, 'no certificate file');
      assert.equal(await certCount(), before, 'no certificate recorded');
    });
  }

  it('leaves the admin provisioner, which has no template, as it was', async () => {
    const leaf = await dev().issue('plain.internal', 'plain');
    const text = await x509TextOfFile(leaf.leaf);
    assert.match(text, /Subject: CN = plain\.internal\n/);
    assert.equal(extension(text, 'X509v3 Subject Alternative Name'), 'DNS:plain.internal');
  });
});
