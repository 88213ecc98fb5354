import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { nameToString, parseCertificate, policyRefusal } from '@shortleaf/pki';
import { AuthorityError } from './errors.js';
import { POLICY_DEFAULTS, parsePolicy } from './policy.js';
import {
  AUD,
  DAY,
  HOUR,
  T0,
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

const SVC_POLICY = {
  names: { dns: ['*.svc.internal'], ip: ['10.0.0.0/8'], uri: ['spiffe://example.org/*'] },
  keyTypes: ['EC-P256'],
  defaultLifetime: '1h',
  maxLifetime: '2h',
  minLifetime: '10m',
};

describe('provisioner policy at issuance', () => {
  let ca: TestCa;
  let svc: TestProvisioner;

  before(async () => {
    ca = await createTestCa();
    svc = await addProvisioner(ca.store, 'svc', SVC_POLICY);
  });
  after(() => ca.close());
  beforeEach(() => ca.clock.set(T0));

  async function sign(
    names: string[],
    opts: { csrNames?: string[]; keyType?: 'EC-P256' | 'Ed25519' | 'EC-P384'; notAfter?: unknown } = {},
  ) {
    const token = await mint(svc, { now: ca.clock.now(), subject: names[0]!, sans: names });
    const csr = makeCsr(opts.csrNames ?? names, { keyType: opts.keyType ?? 'EC-P256' }).pem;
    return ca.authority.sign({ csr, token, notAfter: opts.notAfter, audiences: [AUD], requester: 't' });
  }
  const refused = (p: () => Promise<unknown>, code: string, fragment: string) =>
    unchanged(ca, () => rejectsWith(p(), code, fragment));

  it("issues names every rule allows, for the policy's default lifetime", async () => {
    const issued = await sign(['api.svc.internal', '10.1.2.3', 'spiffe://example.org/ns/api']);
    const cert = parseCertificate(issued.der);
    assert.deepEqual(cert.names.map(nameToString), [
      'dns:api.svc.internal',
      'ip:10.1.2.3',
      'uri:spiffe://example.org/ns/api',
    ]);
    assert.equal(cert.notAfter.toISOString(), at(T0, HOUR).toISOString());
  });

  it('refuses a DNS name outside the pattern, naming the rule', async () => {
    await refused(() => sign(['api.other.internal']), 'nameNotAllowed', '*.svc.internal');
    await refused(() => sign(['a.b.svc.internal']), 'nameNotAllowed', 'DNS name a.b.svc.internal is not allowed');
    await refused(() => sign(['svc.internal']), 'nameNotAllowed', 'svc');
  });

  it('refuses one bad name among good ones', async () => {
    await refused(() => sign(['api.svc.internal', '192.168.1.1']), 'nameNotAllowed', 'provisioner svc');
  });

  it('refuses an IP address outside the range', async () => {
    await refused(() => sign(['192.168.1.1']), 'nameNotAllowed', '10.0.0.0/8');
  });

  it('refuses a URI outside the prefix', async () => {
    await refused(() => sign(['spiffe://other.org/api']), 'nameNotAllowed', 'spiffe://example.org/*');
  });

  it('refuses a key type the policy does not list', async () => {
    await refused(
      () => sign(['api.svc.internal'], { keyType: 'Ed25519' }),
      'keyTypeNotAllowed',
      'Ed25519 is not allowed by provisioner svc (allowed: EC-P256)',
    );
    await refused(() => sign(['api.svc.internal'], { keyType: 'EC-P384' }), 'keyTypeNotAllowed', 'EC-P384');
  });

  it('refuses lifetimes over the maximum or under the minimum', async () => {
    await refused(() => sign(['api.svc.internal'], { notAfter: '3h' }), 'lifetimeTooLong', 'maximum of 2h');
    await refused(() => sign(['api.svc.internal'], { notAfter: '2031-03-02T12:00:00Z' }), 'lifetimeTooLong', '2h');
    await refused(() => sign(['api.svc.internal'], { notAfter: '5m' }), 'lifetimeTooShort', 'minimum of 10m');
    await refused(() => sign(['api.svc.internal'], { notAfter: '2031-03-01T11:00:00Z' }), 'lifetimeTooShort', '10m');
  });

  it('issues at exactly the maximum lifetime', async () => {
    const cert = parseCertificate((await sign(['api.svc.internal'], { notAfter: '2h' })).der);
    assert.equal(cert.notAfter.getTime() - cert.notBefore.getTime(), 2 * HOUR + 60_000);
  });

  it('refuses a notAfter that is neither a duration nor an RFC 3339 time', async () => {
    for (const bad of ['soon', '1.5h', 'h', 3600, true, '2031-13-45T00:00:00Z', '1w']) {
      await refused(() => sign(['api.svc.internal'], { notAfter: bad }), 'badLifetime', '');
    }
    await refused(
      () => sign(['api.svc.internal'], { notAfter: 'soon' }),
      'badLifetime',
      'a duration such as "1h" or an RFC 3339 time',
    );
  });

  it('takes names from the credential: a CSR asking for more is refused', async () => {
    await refused(
      () => sign(['api.svc.internal'], { csrNames: ['api.svc.internal', 'admin.svc.internal'] }),
      'csrNameNotAuthorized',
      'dns:admin.svc.internal',
    );
    await refused(() => sign(['api.svc.internal'], { csrNames: ['10.9.9.9'] }), 'csrNameNotAuthorized', 'ip:10.9.9.9');
  });

  it("takes names from the credential: a CSR asking for fewer still gets the token's names", async () => {
    const cert = parseCertificate((await sign(['api.svc.internal', '10.0.0.7'], { csrNames: [] })).der);
    assert.deepEqual(cert.names.map(nameToString), ['dns:api.svc.internal', 'ip:10.0.0.7']);
  });
});

describe('policy with only DNS rules', () => {
  let ca: TestCa;
  let dnsOnly: TestProvisioner;
  before(async () => {
    ca = await createTestCa();
    dnsOnly = await addProvisioner(ca.store, 'dns-only', { names: { dns: ['.corp.internal'] } });
  });
  after(() => ca.close());

  it('refuses IPs and URIs once any rule exists, and allows any depth under a leading-dot rule', async () => {
    const sign = async (names: string[]) =>
      ca.authority.sign({
        csr: makeCsr(names).pem,
        token: await mint(dnsOnly, { subject: names[0]!, sans: names }),
        audiences: [AUD],
        requester: 't',
      });
    await sign(['a.b.c.corp.internal']);
    await unchanged(ca, () => rejectsWith(sign(['10.0.0.1']), 'nameNotAllowed', 'no IP addresses'));
    await unchanged(ca, () => rejectsWith(sign(['spiffe://corp/x']), 'nameNotAllowed', 'no URIs'));
    await unchanged(ca, () => rejectsWith(sign(['corp.internal']), 'nameNotAllowed', '.corp.internal'));
  });
});

describe('a provisioner stored with a URI rule from before RFC 3986 parsing', () => {
  let ca: TestCa;
  let legacy: TestProvisioner;
  before(async () => {
    ca = await createTestCa();
    // As `provisioner add --allow-uri 'spiffe://example.org/ns/pay*'` stored it on earlier versions.
    legacy = await addProvisioner(ca.store, 'legacy', {
      names: { dns: ['*.svc.internal'], uri: ['spiffe://example.org/ns/pay*'] },
    });
  });
  after(() => ca.close());

  it('keeps issuing what its other rules allow, and refuses every URI with nameNotAllowed saying why', async () => {
    const sign = async (names: string[]) =>
      ca.authority.sign({
        csr: makeCsr(names).pem,
        token: await mint(legacy, { now: ca.clock.now(), subject: names[0]!, sans: names }),
        audiences: [AUD],
        requester: 't',
      });
    await sign(['api.svc.internal']);
    await unchanged(ca, () =>
      rejectsWith(
        sign(['api.svc.internal', 'spiffe://example.org/ns/payments/x']),
        'nameNotAllowed',
        'match nothing: a URI rule is an exact URI or BASE/*',
      ),
    );
  });
});

describe('parsePolicy', () => {
  const bad = (doc: unknown, fragment: string) => {
    assert.throws(
      () => parsePolicy(doc),
      (err) => err instanceof AuthorityError && err.code === 'badPolicy' && err.message.includes(fragment),
      `expected badPolicy mentioning ${fragment}`,
    );
  };

  it('fills in the defaults for an empty policy', () => {
    const p = parsePolicy({});
    assert.deepEqual(POLICY_DEFAULTS, {
      defaultLifetime: '24h',
      maxLifetime: '7d',
      minLifetime: '1m',
      maxLineageAge: '30d',
    });
    assert.equal(p.defaultLifetimeMs, DAY);
    assert.equal(p.maxLifetimeMs, 7 * DAY);
    assert.equal(p.minLifetimeMs, 60_000);
    assert.deepEqual(p.keyTypes, ['EC-P256', 'EC-P384', 'Ed25519', 'RSA']);
    assert.deepEqual(p.names, {});
  });

  it('reads a full policy', () => {
    const p = parsePolicy(SVC_POLICY);
    assert.equal(p.defaultLifetimeMs, HOUR);
    assert.equal(p.maxLifetimeMs, 2 * HOUR);
    assert.equal(p.minLifetimeMs, 10 * 60_000);
    assert.deepEqual(p.keyTypes, ['EC-P256']);
  });

  it('refuses what is not an object', () => {
    for (const doc of [null, [], 'x', 3]) bad(doc, 'a policy must be a JSON object');
  });

  it('refuses unknown keys, naming them', () => {
    bad({ maxLifetme: '1h' }, '"maxLifetme"');
    bad({ names: { rfc822: ['a@b.example'] } }, '"names.rfc822"');
  });

  it('refuses malformed name rules', () => {
    bad({ names: { dns: 'svc.internal' } }, '"names.dns" must be a list of strings');
    bad({ names: { ip: [10] } }, '"names.ip" must be a list of strings');
    bad({ names: { dns: ['bad name.internal'] } }, 'not a valid DNS name');
    bad({ names: { ip: ['10.0.0.0/33'] } }, 'not an IP address or CIDR range');
    bad({ names: { uri: ['example.org/*'] } }, 'has no scheme');
  });

  it('refuses URI rules that would match part of a segment or that no name could have (issue 12, hole 6)', () => {
    bad({ names: { uri: ['spiffe://example.org/ns/pay*'] } }, 'may use "*" only as a whole last path segment');
    bad({ names: { uri: ['spiffe://example.org/ns/../admin/*'] } }, 'dot segment');
    bad({ names: { uri: ['spiffe://example.org/ns/x?y=1'] } }, 'query or fragment');
  });

  it('reads back a stored URI rule from before RFC 3986 parsing, which then matches nothing and says why', () => {
    const stored = parsePolicy(
      { names: { dns: ['*.svc.internal'], uri: ['spiffe://example.org/ns/pay*'] } },
      { stored: true },
    );
    assert.equal(policyRefusal({ kind: 'dns', value: 'a.svc.internal' }, stored.names), null);
    assert.match(
      policyRefusal({ kind: 'uri', value: 'spiffe://example.org/ns/payments/x' }, stored.names) ?? '',
      /is not allowed \(allowed: spiffe:\/\/example\.org\/ns\/pay\*; spiffe:\/\/example\.org\/ns\/pay\* match nothing: a URI rule is an exact URI or BASE\/\*/,
    );
  });

  it('refuses unknown key types', () => {
    bad({ keyTypes: ['DSA'] }, 'DSA');
  });

  // Doubtful: a bad duration surfaces as `badLifetime` (the client-facing "Invalid lifetime", 400)
  // rather than `badPolicy`, and the message quotes the value but not which key holds it.
  it('refuses bad durations', () => {
    for (const doc of [{ maxLifetime: '7 days' }, { defaultLifetime: 5 }, { minLifetime: '' }]) {
      assert.throws(
        () => parsePolicy(doc),
        (err) =>
          err instanceof AuthorityError &&
          ['badPolicy', 'badLifetime'].includes(err.code) &&
          /not a duration/.test(err.message),
      );
    }
  });

  it('refuses lifetimes out of order', () => {
    bad({ minLifetime: '2h', defaultLifetime: '1h', maxLifetime: '3h' }, 'minLifetime ≤ defaultLifetime ≤ maxLifetime');
    bad({ defaultLifetime: '8d' }, 'minLifetime ≤ defaultLifetime ≤ maxLifetime');
    bad({ maxLifetime: '1h', defaultLifetime: '2h' }, 'minLifetime ≤ defaultLifetime ≤ maxLifetime');
    bad({ minLifetime: '2d' }, 'minLifetime ≤ defaultLifetime ≤ maxLifetime');
    assert.equal(parsePolicy({ minLifetime: '1h', defaultLifetime: '1h', maxLifetime: '1h' }).maxLifetimeMs, HOUR);
  });

  it('lowers the default lifetime to a maximum given alone below it', () => {
    const p = parsePolicy({ maxLifetime: '2h' });
    assert.equal(p.defaultLifetimeMs, 2 * HOUR);
    assert.equal(p.maxLifetimeMs, 2 * HOUR);
  });
});
