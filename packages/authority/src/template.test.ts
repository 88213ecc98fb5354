// Per-provisioner certificate templates: the document is checked key by key at start-up, checked
// again against the provisioners in the store, and at issuance shapes the leaf (subject fields,
// EKUs, URI SANs from token claims, lifetime) without ever escaping the provisioner's policy.
import assert from 'node:assert/strict';
import { X509Certificate, randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { nameToString, parseCertificate, parseCsr } from '@shortleaf/pki';
import { createAuthority, type Authority } from './authority.js';
import { AuthorityError } from './errors.js';
import {
  CLAIM_VALUE,
  assertTemplatesFitProvisioners,
  parseTemplate,
  parseTemplates,
  renderTemplateUris,
} from './template.js';
import {
  AUD,
  HOUR,
  T0,
  URLS,
  addProvisioner,
  at,
  createTestCa,
  makeCsr,
  mint,
  rejectsWith,
  unchanged,
  type TestCa,
  type TestProvisioner,
} from './test-fixtures.js';

const WHERE = 'templates.services';
const SPIFFE = 'spiffe://example.org/ns/{namespace}/sa/{service}';
const GOOD = {
  subject: { organization: 'Example Corp', organizationalUnit: 'payments', country: 'US' },
  extKeyUsage: ['serverAuth', 'clientAuth'],
  uris: [SPIFFE],
  lifetime: '8h',
};

/** Asserts `fn` throws AuthorityError with `code` and exactly `message` (string) or a match (RegExp). */
function throwsCode(fn: () => unknown, code: string, message: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof AuthorityError, `expected AuthorityError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

const parse = (doc: unknown) => parseTemplate(doc, WHERE);

describe('parseTemplate', () => {
  it('returns a typed template for a full document', () => {
    const t = parse(GOOD);
    assert.equal(t.where, WHERE);
    assert.deepEqual(t.subject, GOOD.subject);
    assert.deepEqual(t.extKeyUsage, ['serverAuth', 'clientAuth']);
    assert.equal(t.lifetimeMs, 8 * HOUR);
    assert.deepEqual(
      t.uris.map((u) => [u.text, u.where]),
      [[SPIFFE, `${WHERE}.uris[0]`]],
    );
    assert.deepEqual(t.uris[0]!.parts, [
      { literal: 'spiffe://example.org/ns/' },
      { claim: 'namespace' },
      { literal: '/sa/' },
      { claim: 'service' },
    ]);
  });

  it('accepts an empty template, which changes nothing', () => {
    const t = parse({});
    assert.deepEqual(t, { where: WHERE, subject: {}, uris: [], dnsNames: [], emails: [] });
  });

  it('names an unknown key exactly, with the known ones', () => {
    throwsCode(
      () => parse({ ...GOOD, lifetme: '8h' }),
      'badTemplate',
      'unknown template key "templates.services.lifetme" (known keys: subject, extKeyUsage, uris, dnsNames, emails, lifetime)',
    );
  });

  for (const key of ['isCa', 'basicConstraints', 'keyUsage', 'pathLen']) {
    it(`refuses ${key}: templates cannot make CA certificates`, () => {
      throwsCode(
        () => parse({ ...GOOD, [key]: true }),
        'badTemplate',
        new RegExp(
          `^template key "templates\\.services\\.${key}" is not allowed: templates cannot make CA certificates`,
        ),
      );
    });
  }

  it('refuses unknown subject fields, the common name, non-strings and values past RFC 5280 bounds', () => {
    throwsCode(
      () => parse({ subject: { org: 'x' } }),
      'badTemplate',
      'unknown template key "templates.services.subject.org" (known keys: country, province, locality, organization, organizationalUnit)',
    );
    throwsCode(
      () => parse({ subject: { commonName: 'x' } }),
      'badTemplate',
      /"templates\.services\.subject\.commonName" is not allowed: the common name comes from the token/,
    );
    throwsCode(
      () => parse({ subject: { organization: 7 } }),
      'badTemplate',
      'template key "templates.services.subject.organization" must be a string',
    );
    throwsCode(
      () => parse({ subject: { country: 'USA' } }),
      'badTemplate',
      /^template key "templates\.services\.subject\.country": subject country must be a two-letter ISO 3166 code/,
    );
    throwsCode(
      () => parse({ subject: { organization: 'x'.repeat(65) } }),
      'badTemplate',
      /subject\.organization": subject organization must be 1 to 64 characters/,
    );
    throwsCode(
      () => parse({ subject: 'Example Corp' }),
      'badTemplate',
      /"templates\.services\.subject" must be an object/,
    );
  });

  it('refuses unknown, forbidden, repeated and empty extended key usages', () => {
    throwsCode(
      () => parse({ extKeyUsage: ['serverAuth', 'OCSPSigning'] }),
      'badTemplate',
      /^template key "templates\.services\.extKeyUsage\[1\]": extended key usage OCSPSigning is refused/,
    );
    throwsCode(
      () => parse({ extKeyUsage: ['anyExtendedKeyUsage'] }),
      'badTemplate',
      /extKeyUsage\[0\]": extended key usage anyExtendedKeyUsage is refused/,
    );
    throwsCode(
      () => parse({ extKeyUsage: ['serverAuth', 'smtpAuth'] }),
      'badTemplate',
      /extKeyUsage\[1\]": unknown extended key usage "smtpAuth" \(known: serverAuth, clientAuth, codeSigning, emailProtection, timeStamping\)/,
    );
    throwsCode(
      () => parse({ extKeyUsage: ['clientAuth', 'clientAuth'] }),
      'badTemplate',
      /extKeyUsage\[1\]": clientAuth is listed twice/,
    );
    throwsCode(
      () => parse({ extKeyUsage: [] }),
      'badTemplate',
      /"templates\.services\.extKeyUsage" must be a non-empty list/,
    );
    throwsCode(() => parse({ extKeyUsage: 'serverAuth' }), 'badTemplate', /must be a non-empty list/);
  });

  it('refuses malformed {placeholder} syntax, naming the URI', () => {
    const cases: Array<[string, RegExp]> = [
      ['spiffe://example.org/ns/{namespace', /"\{" without a matching "\}"/],
      ['spiffe://example.org/ns/namespace}', /"\}" without a matching "\{"/],
      ['spiffe://example.org/ns/{}', /\{\} is not a claim placeholder/],
      ['spiffe://example.org/ns/{name-space}', /\{name-space\} is not a claim placeholder/],
      ['spiffe://example.org/ns/{a{b}}', /\{a\{b\} is not a claim placeholder/],
      ['spiffe://example.org/ns/{jti}', /\{jti\} names a registered token claim/],
      ['{scheme}://example.org/x', /must start with a literal scheme such as "spiffe:\/\/"/],
      ['example.org/{namespace}', /must start with a literal scheme/],
      ['spiffe://example.org/ns/{namespace} x', /is not a valid URI|whitespace/],
    ];
    for (const [uri, message] of cases) {
      throwsCode(() => parse({ uris: [SPIFFE, uri] }), 'badTemplate', message);
      throwsCode(() => parse({ uris: [SPIFFE, uri] }), 'badTemplate', /^template key "templates\.services\.uris\[1\]"/);
    }
    throwsCode(() => parse({ uris: SPIFFE }), 'badTemplate', /"templates\.services\.uris" must be a list/);
    throwsCode(
      () => parse({ uris: [42] }),
      'badTemplate',
      'template key "templates.services.uris[0]" must be a string',
    );
  });

  it('refuses a lifetime that is not a positive duration', () => {
    throwsCode(
      () => parse({ lifetime: '8 hours' }),
      'badTemplate',
      /^template key "templates\.services\.lifetime": "8 hours" is not a duration/,
    );
    throwsCode(
      () => parse({ lifetime: '0s' }),
      'badTemplate',
      'template key "templates.services.lifetime" must be longer than 0s',
    );
    throwsCode(() => parse({ lifetime: 3600 }), 'badTemplate', /"templates\.services\.lifetime" must be a duration/);
  });

  it('refuses literal parts that make a URI name the parser refuses (issue 12, hole 6)', () => {
    const cases: Array<[string, string]> = [
      ['spiffe://example.org/ns/{namespace}/../admin', 'dot segment'],
      ['spiffe://example.org/ns/{namespace}/%2e%2e/admin', 'dot segment'],
      ['spiffe://example.org/ns/{namespace}%2fadmin', 'encoded slash'],
      ['spiffe://example.org/ns/{namespace}?y=1', 'query or fragment'],
      ['spiffe://example.org/ns/{namespace}/', 'trailing "/"'],
      ['spiffe://Example.org/ns/{namespace}', 'lower-case'],
      ['spiffe://example.org:8443/ns/{namespace}', 'no port'],
      ['https://id.example/{namespace}#f', 'fragment'],
    ];
    for (const [uri, fragment] of cases) {
      throwsCode(
        () => parse({ uris: [uri] }),
        'badTemplate',
        new RegExp(`^template key "templates\\.services\\.uris\\[0\\]": .*${fragment.replace(/[.?"/]/g, '\\$&')}`),
      );
    }
  });

  it('parseTemplates maps provisioner names to templates and names the provisioner in errors', () => {
    const all = parseTemplates({ services: GOOD, web: { lifetime: '1h' } });
    assert.deepEqual([...all.keys()], ['services', 'web']);
    assert.equal(all.get('web')!.where, 'templates.web');
    assert.equal(parseTemplates(undefined).size, 0);
    throwsCode(() => parseTemplates({ web: { isCa: true } }), 'badTemplate', /"templates\.web\.isCa" is not allowed/);
    throwsCode(() => parseTemplates([GOOD]), 'badTemplate', /"templates" must be an object/);
  });
});

describe('renderTemplateUris', () => {
  const t = parse(GOOD);

  it('fills each placeholder from the token claims', () => {
    assert.deepEqual(renderTemplateUris(t, { namespace: 'prod', service: 'api', other: 'x' }).map(nameToString), [
      'uri:spiffe://example.org/ns/prod/sa/api',
    ]);
    assert.deepEqual(renderTemplateUris(t, { namespace: 'a..b', service: 'v1.2_x-y' }).map(nameToString), [
      'uri:spiffe://example.org/ns/a..b/sa/v1.2_x-y',
    ]);
  });

  it('refuses a rendering the URI rules refuse, even when each claim value is allowed', () => {
    // An allowed claim value in the trust domain, upper-case, would make an invalid SPIFFE ID.
    const td = parse({ uris: ['spiffe://{domain}/ns/{namespace}'] });
    assert.deepEqual(renderTemplateUris(td, { domain: 'example.org', namespace: 'prod' }).map(nameToString), [
      'uri:spiffe://example.org/ns/prod',
    ]);
    throwsCode(
      () => renderTemplateUris(td, { domain: 'Example.org', namespace: 'prod' }),
      'templateClaimInvalid',
      /make templates\.services\.uris\[0\] an invalid URI: .*lower-case/,
    );
  });

  it('puts each claim into a DNS template as exactly one label, and accepts {sub}', () => {
    const dns = parse({ dnsNames: ['{sub}.{namespace}.svc.example.org'] });
    assert.deepEqual(renderTemplateUris(dns, { sub: 'API', namespace: 'prod' }).map(nameToString), [
      'dns:api.prod.svc.example.org',
    ]);
    // A value with a dot would add a label (and could climb out of svc.example.org); a "*" make a wildcard.
    for (const value of ['evil.com', 'a.b', '*', '-a', 'a_b', 'a/b', ''])
      throwsCode(
        () => renderTemplateUris(dns, { sub: value, namespace: 'prod' }),
        'templateClaimInvalid',
        /must be one DNS label/,
      );
    throwsCode(
      () => parse({ dnsNames: ['{namespace}..example.org'] }),
      'badTemplate',
      /^template key "templates\.services\.dnsNames\[0\]"/,
    );
  });

  it('refuses a missing claim with templateClaimMissing, naming claim and template', () => {
    throwsCode(
      () => renderTemplateUris(t, { namespace: 'prod' }),
      'templateClaimMissing',
      /the token has no "service" claim, which templates\.services\.uris\[0\] \(spiffe:\/\/example\.org\/ns\/\{namespace\}\/sa\/\{service\}\) needs/,
    );
    // Inherited properties are not claims.
    const proto = parse({ uris: ['spiffe://example.org/{constructor}/{toString}'] });
    throwsCode(() => renderTemplateUris(proto, {}), 'templateClaimMissing', /no "constructor" claim/);
  });

  for (const value of [
    '../x',
    'a/b',
    '..',
    '.',
    '%2e%2e',
    'a%2fb',
    'user@evil.org',
    'a:b',
    'a?b',
    'a#b',
    '',
    ' x',
    'é',
    '-x',
    'x'.repeat(64),
  ]) {
    it(`refuses the claim value ${JSON.stringify(value)} with templateClaimInvalid`, () => {
      assert.equal(CLAIM_VALUE.test(value), false);
      throwsCode(
        () => renderTemplateUris(t, { namespace: value, service: 'api' }),
        'templateClaimInvalid',
        /the token claim "namespace" cannot go into templates\.services\.uris\[0\]: it must be 1 to 63 letters/,
      );
    });
  }
});

describe('assertTemplatesFitProvisioners', () => {
  let ca: TestCa;
  before(async () => {
    ca = await createTestCa();
    await addProvisioner(ca.store, 'services', {
      names: { uri: ['spiffe://example.org/ns/*'] },
      minLifetime: '5m',
      maxLifetime: '12h',
    });
    await ca.store.addProvisioner({ name: 'acme', type: 'acme', publicJwk: null, policy: '{}', createdAt: T0 });
  });
  after(() => ca.close());

  const fit = (docs: Record<string, unknown>) => assertTemplatesFitProvisioners(parseTemplates(docs), ca.store);

  it("refuses a placeholder a Kubernetes provisioner's tokens never carry", async () => {
    await ca.store.addProvisioner({
      name: 'cluster',
      type: 'kubernetes',
      publicJwk: null,
      policy: '{}',
      options: JSON.stringify({
        issuer: 'https://k8s.example',
        audience: 'shortleaf',
        jwksUrl: 'https://k8s.example/jwks',
      }),
      createdAt: T0,
    });
    await fit({
      cluster: { uris: ['spiffe://example.org/ns/{namespace}/sa/{serviceaccount}'], dnsNames: ['{pod}.pods.example'] },
    });
    await assert.rejects(
      fit({ cluster: { uris: [SPIFFE] } }),
      (err) =>
        err instanceof AuthorityError &&
        err.code === 'badTemplate' &&
        /templates\.cluster\.uris\[0\]": \{service\} is never in provisioner cluster's tokens \(kubernetes tokens offer \{namespace\}, \{serviceaccount\}, \{pod\}\)/.test(
          err.message,
        ),
    );
  });

  it('accepts templates that fit their provisioners', async () => {
    await fit({
      services: GOOD,
      acme: { subject: { organization: 'Example Corp' }, extKeyUsage: ['serverAuth'], lifetime: '1h' },
    });
    await fit({ services: { uris: ['spiffe://example.org/ns/fixed'] } });
  });

  it('refuses a template for a provisioner that does not exist', async () => {
    await rejectsWith(
      fit({ servcies: GOOD }),
      'badTemplate',
      'template "templates.servcies" is for provisioner "servcies", which does not exist',
    );
  });

  it("refuses a lifetime outside the provisioner's min..max", async () => {
    await rejectsWith(
      fit({ services: { lifetime: '1d' } }),
      'badTemplate',
      'template key "templates.services.lifetime" (1d) is outside provisioner services\'s policy: 5m to 12h',
    );
    await rejectsWith(fit({ services: { lifetime: '1m' } }), 'badTemplate', '(1m) is outside');
  });

  it('refuses URIs on an ACME provisioner: its names must be proven by challenges', async () => {
    await rejectsWith(
      fit({ acme: { uris: [SPIFFE] } }),
      'badTemplate',
      'template key "templates.acme.uris" is not allowed: acme is an ACME provisioner, whose names must be proven by challenges',
    );
  });

  it('refuses a URI no token could ever make pass the name policy', async () => {
    await rejectsWith(
      fit({ services: { uris: ['spiffe://other.org/ns/{namespace}'] } }),
      'badTemplate',
      'template key "templates.services.uris[0]" can never pass provisioner services\'s name policy: no URI starting "spiffe://other.org/ns/" is allowed',
    );
    await rejectsWith(
      fit({ services: { uris: ['spiffe://example.org/other'] } }),
      'badTemplate',
      'URI spiffe://example.org/other is not allowed',
    );
  });
});

describe('issuance with a template', () => {
  let ca: TestCa;
  let services: TestProvisioner;
  let plain: TestProvisioner;
  let authority: Authority;
  const SERVICES_POLICY = {
    names: { dns: ['*.prod.example'], uri: ['spiffe://example.org/ns/prod/*'] },
    minLifetime: '5m',
    maxLifetime: '12h',
    defaultLifetime: '1h',
  };

  const withTemplates = (docs: Record<string, unknown>): Authority =>
    createAuthority({
      store: ca.store,
      issuer: ca.issuer,
      clock: ca.clock,
      random: (n) => new Uint8Array(randomBytes(n)),
      urls: URLS,
      logger: ca.logger,
      templates: parseTemplates(docs),
    });

  before(async () => {
    ca = await createTestCa();
    services = await addProvisioner(ca.store, 'services', SERVICES_POLICY);
    plain = await addProvisioner(ca.store, 'plain', SERVICES_POLICY);
    await ca.store.addProvisioner({
      name: 'acme',
      type: 'acme',
      publicJwk: null,
      policy: JSON.stringify({ names: { dns: ['*.prod.example'] } }),
      createdAt: T0,
    });
    authority = withTemplates({
      services: GOOD,
      acme: { subject: { organization: 'Example Corp' }, extKeyUsage: ['serverAuth'], lifetime: '2h' },
    });
  });
  after(() => ca.close());
  beforeEach(() => ca.clock.set(T0));

  async function sign(
    opts: {
      claims?: Record<string, unknown>;
      sans?: string[];
      csrNames?: string[];
      notAfter?: unknown;
      provisioner?: TestProvisioner;
      via?: Authority;
    } = {},
  ) {
    const sans = opts.sans ?? ['api.prod.example'];
    const token = await mint(opts.provisioner ?? services, {
      now: ca.clock.now(),
      subject: sans[0]!,
      sans,
      claims: opts.claims ?? { namespace: 'prod', service: 'api' },
    });
    return (opts.via ?? authority).sign({
      csr: makeCsr(opts.csrNames ?? sans).pem,
      token,
      notAfter: opts.notAfter,
      audiences: [AUD],
      requester: 'unit-test',
    });
  }
  const refused = (p: () => Promise<unknown>, code: string, fragment: string) =>
    unchanged(ca, () => rejectsWith(p(), code, fragment));

  it('adds the subject fields, the EKUs and the URI built from the claims; lives the template lifetime; never a CA', async () => {
    const issued = await sign();
    const cert = parseCertificate(issued.der);
    const x = new X509Certificate(issued.der);
    assert.equal(x.subject, 'C=US\nO=Example Corp\nOU=payments\nCN=api.prod.example');
    assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(cert.isCa, false);
    assert.deepEqual(cert.names.map(nameToString), ['dns:api.prod.example', 'uri:spiffe://example.org/ns/prod/sa/api']);
    assert.deepEqual(issued.names.map(nameToString), [
      'dns:api.prod.example',
      'uri:spiffe://example.org/ns/prod/sa/api',
    ]);
    assert.equal(
      cert.notAfter.toISOString(),
      at(T0, 8 * HOUR).toISOString(),
      "the template's 8h, not the policy's 1h default",
    );
    const row = await ca.store.getCertificate(issued.serial);
    assert.deepEqual(
      row?.names,
      ['dns:api.prod.example', 'uri:spiffe://example.org/ns/prod/sa/api'],
      'the URI is recorded, so renewal keeps it',
    );
  });

  it('still honours a requested notAfter within the policy, and refuses one past its maximum', async () => {
    const issued = await sign({ notAfter: '2h' });
    assert.equal(parseCertificate(issued.der).notAfter.toISOString(), at(T0, 2 * HOUR).toISOString());
    await refused(() => sign({ notAfter: '13h' }), 'lifetimeTooLong', "exceeds this provisioner's maximum of 12h");
  });

  it('refuses a token without a claim the template needs, issuing nothing and burning no token', async () => {
    const token = await mint(services, {
      subject: 'api.prod.example',
      sans: ['api.prod.example'],
      claims: { namespace: 'prod' },
    });
    const csr = makeCsr(['api.prod.example']).pem;
    await refused(
      () => authority.sign({ csr, token, audiences: [AUD], requester: 't' }),
      'templateClaimMissing',
      'the token has no "service" claim',
    );
  });

  it('refuses claim values that could escape their path segment', async () => {
    for (const service of ['../x', 'a/b', '%2e%2e', 'api@evil.org']) {
      await refused(
        () => sign({ claims: { namespace: 'prod', service } }),
        'templateClaimInvalid',
        'the token claim "service" cannot go into templates.services.uris[0]',
      );
    }
    await refused(
      () => sign({ claims: { namespace: 'prod', service: 7 } }),
      'templateClaimMissing',
      'no "service" claim',
    );
  });

  it("refuses a rendered URI outside the provisioner's name policy with nameNotAllowed", async () => {
    await refused(
      () => sign({ claims: { namespace: 'dev', service: 'api' } }),
      'nameNotAllowed',
      'provisioner services: URI spiffe://example.org/ns/dev/sa/api is not allowed',
    );
  });

  it('accepts a CSR that asks for the templated URI, and does not repeat a URI the token also names', async () => {
    const uri = 'spiffe://example.org/ns/prod/sa/api';
    const asked = await sign({ csrNames: ['api.prod.example', uri] });
    assert.deepEqual(parseCertificate(asked.der).names.map(nameToString), ['dns:api.prod.example', `uri:${uri}`]);
    const both = await sign({ sans: ['api.prod.example', uri] });
    assert.deepEqual(parseCertificate(both.der).names.map(nameToString), ['dns:api.prod.example', `uri:${uri}`]);
  });

  it('leaves other provisioners alone: default subject, EKUs and lifetime', async () => {
    const issued = await sign({ provisioner: plain });
    const x = new X509Certificate(issued.der);
    assert.equal(x.subject, 'CN=api.prod.example');
    assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.deepEqual(parseCertificate(issued.der).names.map(nameToString), ['dns:api.prod.example']);
    assert.equal(parseCertificate(issued.der).notAfter.toISOString(), at(T0, HOUR).toISOString());
  });

  it("renewal applies today's template subject and EKUs, and keeps the recorded URI", async () => {
    const issued = await sign();
    ca.clock.advance(HOUR);
    const changed = withTemplates({
      services: {
        ...GOOD,
        subject: { organization: 'Example Corp', organizationalUnit: 'billing' },
        extKeyUsage: ['clientAuth'],
      },
    });
    const renewed = await changed.renew({ clientCertificate: issued.der, requester: 'renewer' });
    const x = new X509Certificate(renewed.der);
    assert.equal(x.subject, 'O=Example Corp\nOU=billing\nCN=api.prod.example');
    assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.2']);
    assert.deepEqual(parseCertificate(renewed.der).names.map(nameToString), [
      'dns:api.prod.example',
      'uri:spiffe://example.org/ns/prod/sa/api',
    ]);
    assert.equal(parseCertificate(renewed.der).isCa, false);
  });

  it('ACME issuance applies the subject fields, EKUs and lifetime', async () => {
    const csr = makeCsr(['www.prod.example']);
    const names = parseCsr(csr.der).requestedNames;
    const issued = await authority.issueForOrder({
      provisioner: 'acme',
      account: 'acct-1',
      order: 'order-1',
      csr: parseCsr(csr.der),
      names,
      requester: 'acme-test',
    });
    const x = new X509Certificate(issued.der);
    assert.equal(x.subject, 'O=Example Corp\nCN=www.prod.example');
    assert.deepEqual(x.keyUsage, ['1.3.6.1.5.5.7.3.1']);
    assert.equal(parseCertificate(issued.der).notAfter.toISOString(), at(T0, 2 * HOUR).toISOString());
  });
});
