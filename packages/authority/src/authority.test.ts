import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { after, before, beforeEach, describe, it } from 'node:test';
import { isIssuedBy, nameToString, parseCertificate, PkiError, readCertificate } from '@shortleaf/pki';
import { StoreError } from '@shortleaf/store';
import { BACKDATE_MS, INTERNAL_PROVISIONER, createAuthority } from './authority.js';
import { AuthorityError } from './errors.js';
import type { AuthorityStore } from './ports.js';
import {
  AUD,
  DAY,
  HOUR,
  T0,
  URLS,
  addProvisioner,
  at,
  createTestCa,
  makeCsr,
  memoryLogger,
  mint,
  rejectsWith,
  unchanged,
  type TestCa,
  type TestProvisioner,
} from './test-fixtures.js';

const NAMES = ['api.internal', '10.1.2.3', 'spiffe://example.org/api'];

describe('authority.sign', () => {
  let ca: TestCa;
  let ops: TestProvisioner;

  before(async () => {
    ca = await createTestCa();
    ops = await addProvisioner(ca.store, 'ops', {});
  });
  after(() => ca.close());
  beforeEach(() => {
    ca.clock.set(T0);
    ca.setRandom(null);
  });

  async function sign(
    opts: { names?: string[]; csrNames?: string[]; notAfter?: unknown; token?: string; csr?: unknown } = {},
  ) {
    const names = opts.names ?? ['api.internal'];
    const token = opts.token ?? (await mint(ops, { now: ca.clock.now(), subject: names[0]!, sans: names }));
    const csr = opts.csr ?? makeCsr(opts.csrNames ?? names).pem;
    return ca.authority.sign({ csr, token, notAfter: opts.notAfter, audiences: [AUD], requester: 'unit-test' });
  }

  it("issues a certificate for the token's names, recorded and audited before it is returned", async () => {
    const before = await ca.counts();
    const csr = makeCsr(NAMES);
    const token = await mint(ops, { subject: 'api.internal', sans: NAMES });
    const issued = await ca.authority.sign({ csr: csr.pem, token, audiences: [AUD], requester: 'unit-test' });

    const cert = parseCertificate(issued.der);
    assert.deepEqual(cert.names.map(nameToString), ['dns:api.internal', 'ip:10.1.2.3', 'uri:spiffe://example.org/api']);
    assert.equal(cert.commonName, 'api.internal');
    assert.equal(cert.serial, issued.serial);
    assert.ok(Buffer.from(cert.publicKey.spki).equals(csr.publicKey.spki), 'the certificate carries the CSR key');
    assert.equal(cert.isCa, false);
    assert.ok(isIssuedBy(cert, ca.issuer.certificate), 'signed by the intermediate');
    assert.equal(issued.chain.length, 1);
    assert.ok(Buffer.from(issued.chain[0]!).equals(ca.intermediateDer), 'chain is the intermediate, never the root');

    const row = await ca.store.getCertificate(issued.serial);
    assert.ok(row !== null);
    assert.equal(row.status, 'issued');
    assert.ok(
      row.der !== null && Buffer.from(row.der).equals(issued.der),
      'the store holds exactly the bytes the client gets',
    );
    assert.equal(row.provisioner, 'ops');
    assert.equal(row.requester, 'unit-test');
    assert.deepEqual(row.names, ['dns:api.internal', 'ip:10.1.2.3', 'uri:spiffe://example.org/api']);

    const audit = (await ca.store.listAudit()).filter((e) => e.serial === issued.serial);
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.action, 'issue');
    assert.equal(audit[0]!.actor, 'provisioner:ops');

    const afterCounts = await ca.counts();
    assert.equal(afterCounts.certificates, before.certificates! + 1);
    assert.equal(afterCounts.token_uses, before.token_uses! + 1);
    assert.equal(afterCounts.audit_log, before.audit_log! + 1);
  });

  it('backdates notBefore one minute and defaults to a 24 h lifetime', async () => {
    const issued = await sign();
    const cert = parseCertificate(issued.der);
    assert.equal(BACKDATE_MS, 60_000);
    assert.equal(cert.notBefore.toISOString(), at(T0, -60_000).toISOString());
    assert.equal(cert.notAfter.toISOString(), at(T0, DAY).toISOString());
    assert.equal(issued.notBefore.toISOString(), cert.notBefore.toISOString());
    assert.equal(issued.notAfter.toISOString(), cert.notAfter.toISOString());
  });

  it('accepts notAfter as a duration', async () => {
    const cert = parseCertificate((await sign({ notAfter: '1h' })).der);
    assert.equal(cert.notAfter.toISOString(), at(T0, HOUR).toISOString());
    const sum = parseCertificate((await sign({ notAfter: '1h30m' })).der);
    assert.equal(sum.notAfter.toISOString(), at(T0, 90 * 60_000).toISOString());
  });

  it('accepts notAfter as an RFC 3339 time', async () => {
    const cert = parseCertificate((await sign({ notAfter: '2031-03-01T18:00:00Z' })).der);
    assert.equal(cert.notAfter.toISOString(), '2031-03-01T18:00:00.000Z');
  });

  // BUG (authority.ts resolveLifetime/issue): an RFC 3339 lifetime is measured from the clock with
  // its milliseconds but added to the clock floored to the second, so notAfter carries
  // milliseconds, the validity_whole_seconds lint fails and the request becomes an internal error.
  it('accepts an RFC 3339 notAfter when the clock is not on a whole second', async () => {
    ca.clock.set(at(T0, 250));
    const issued = await sign({ notAfter: '2031-03-01T18:00:00Z' });
    assert.equal(parseCertificate(issued.der).notAfter.toISOString(), '2031-03-01T18:00:00.000Z');
  });

  // Same BUG, other trigger: a requested time with fractional seconds is a client-caused 500.
  it('truncates or refuses (4xx) an RFC 3339 notAfter with fractional seconds', async () => {
    const outcome = await sign({ notAfter: '2031-03-01T18:00:00.500Z' }).then(
      (issued) => parseCertificate(issued.der).notAfter.toISOString(),
      (err: AuthorityError) => err.code,
    );
    assert.ok(['2031-03-01T18:00:00.000Z', 'badLifetime'].includes(outcome), `got ${outcome}`);
  });

  it("never issues past the intermediate's notAfter", async () => {
    const end = ca.issuer.certificate.notAfter;
    ca.clock.set(at(end, -HOUR));
    const issued = await sign();
    const cert = parseCertificate(issued.der);
    assert.equal(cert.notAfter.toISOString(), end.toISOString(), 'clamped to the issuer');
    assert.equal(cert.notBefore.toISOString(), at(end, -HOUR - 60_000).toISOString());
  });

  // Doubtful, not a bug in what is issued: once the intermediate has expired every request reaches
  // the lint (notAfter before notBefore) and is reported as an internal bug instead of a clear
  // "issuer expired" refusal. Nothing is issued, which is what this test pins down.
  it('issues nothing once the intermediate has expired, and says so (not a lint bug)', async () => {
    ca.clock.set(at(ca.issuer.certificate.notAfter, HOUR));
    const token = await mint(ops, { now: ca.clock.now() });
    await unchanged(ca, () => rejectsWith(sign({ token }), 'issuerUnavailable', 'the intermediate expired'));
  });

  it('does not burn a token on a refused request', async () => {
    const token = await mint(ops, { subject: 'api.internal' });
    await unchanged(ca, () => rejectsWith(sign({ token, csr: 'not a PEM' }), 'badPem', 'no PEM block', PkiError));
    await unchanged(ca, () => rejectsWith(sign({ token, csr: 42 }), 'badCsr', 'PEM string', PkiError));
    await unchanged(ca, () =>
      rejectsWith(
        sign({ token, csrNames: ['api.internal', 'db.internal'] }),
        'csrNameNotAuthorized',
        'dns:db.internal',
      ),
    );
    const issued = await sign({ token });
    assert.equal(parseCertificate(issued.der).commonName, 'api.internal');
  });

  it('refuses a replayed token, having recorded only the first issuance', async () => {
    const token = await mint(ops);
    const before = await ca.counts();
    await sign({ token });
    const afterFirst = await ca.counts();
    assert.equal(afterFirst.certificates, before.certificates! + 1);
    await unchanged(ca, () => rejectsWith(sign({ token }), 'tokenReplayed', 'single-use'));
  });

  it('gives 500 issuances 500 distinct positive serials', async () => {
    const csr = makeCsr(['bulk.internal']).pem;
    const serials = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const token = await mint(ops, { subject: 'bulk.internal' });
      const issued = await ca.authority.sign({ csr, token, audiences: [AUD], requester: 'bulk' });
      assert.match(issued.serial, /^[1-9a-f][0-9a-f]{0,33}$/);
      serials.add(issued.serial);
    }
    assert.equal(serials.size, 500);
    const rows = await ca.store.listCertificates({ status: 'issued' });
    assert.equal(new Set(rows.map((r) => r.serial)).size, rows.length);
  });

  it('retries a serial the database already holds, with a fresh one', async () => {
    const fixed = new Uint8Array(16).fill(0x21);
    ca.setRandom(() => fixed);
    const first = await sign();
    let calls = 0;
    ca.setRandom((n) => (++calls === 1 ? fixed : new Uint8Array(n).fill(0x22)));
    const second = await sign();
    assert.notEqual(second.serial, first.serial);
    assert.equal(calls, 2);
  });

  it('gives up with an error, issuing nothing, when the random source keeps repeating', async () => {
    const fixed = new Uint8Array(16).fill(0x31);
    ca.setRandom(() => fixed);
    await sign();
    let calls = 0;
    ca.setRandom(() => {
      calls++;
      return fixed;
    });
    const token = await mint(ops);
    const err = await unchanged(ca, () => rejectsWith(sign({ token }), 'internal', 'nothing was issued'));
    assert.ok(err.cause instanceof StoreError && err.cause.code === 'serialCollision');
    assert.equal(calls, 4, 'one try and three retries, not a loop');
    ca.setRandom(null);
    await sign({ token }); // the token was not spent by the failed attempts
  });

  it('returns nothing when the signed certificate cannot be recorded', async () => {
    const failing: AuthorityStore = Object.create(ca.store, {
      completeCertificate: { value: async () => Promise.reject(new StoreError('storageUnavailable', 'disk full')) },
    });
    const authority = createAuthority({
      store: failing,
      issuer: ca.issuer,
      clock: ca.clock,
      random: (n) => new Uint8Array(n).fill(0x41),
      urls: URLS,
      logger: memoryLogger(),
    });
    const token = await mint(ops);
    await rejectsWith(
      authority.sign({ csr: makeCsr(['api.internal']).pem, token, audiences: [AUD], requester: 't' }),
      'storageUnavailable',
      'nothing was issued',
    );
    const row = await ca.store.getCertificate('41'.repeat(16));
    assert.equal(row?.status, 'reserved', 'the intent stays recorded; no DER was handed out');
    assert.equal(row?.der, null);
  });

  it('maps an unavailable store at reservation to storageUnavailable and spends no token', async () => {
    const failing: AuthorityStore = Object.create(ca.store, {
      reserveCertificate: { value: async () => Promise.reject(new StoreError('storageUnavailable', 'SQLITE_BUSY')) },
    });
    const authority = createAuthority({
      store: failing,
      issuer: ca.issuer,
      clock: ca.clock,
      random: (n) => new Uint8Array(n).fill(0x42),
      urls: URLS,
      logger: memoryLogger(),
    });
    const token = await mint(ops);
    await unchanged(ca, () =>
      rejectsWith(
        authority.sign({ csr: makeCsr(['api.internal']).pem, token, audiences: [AUD], requester: 't' }),
        'storageUnavailable',
        'unavailable',
      ),
    );
    await sign({ token });
  });

  it("issues the CA's own server certificate under the internal provisioner, audited", async () => {
    const csr = makeCsr();
    const issued = await ca.authority.issueServerCertificate({
      publicKey: csr.publicKey,
      names: ['ca.internal', '127.0.0.1'],
      lifetimeMs: 7 * DAY,
    });
    const cert = readCertificate(issued.der);
    assert.deepEqual(cert.names.map(nameToString), ['dns:ca.internal', 'ip:127.0.0.1']);
    assert.equal(cert.notAfter.toISOString(), at(T0, 7 * DAY).toISOString());
    const row = await ca.store.getCertificate(issued.serial);
    assert.equal(row?.provisioner, INTERNAL_PROVISIONER);
    assert.ok((await ca.store.listAudit()).some((e) => e.serial === issued.serial && e.actor === INTERNAL_PROVISIONER));
  });

  it('never logs a token or key', async () => {
    const token = await mint(ops);
    await sign({ token });
    const text = ca.logger.text();
    assert.ok(!text.includes(token) && !text.includes(token.split('.')[2]!));
    assert.ok(!text.includes(String(ops.privateJwk.d)));
    assert.ok(!text.includes('test-pass'));
  });
});

describe('authority lints before it signs', () => {
  let ca: TestCa;
  let ops: TestProvisioner;

  before(async () => {
    // An intermediate constrained to .internal.example, and a provisioner with no name policy:
    // only the names_within_issuer_constraints lint stands between a token and a bad certificate.
    ca = await createTestCa({ permitDns: ['.internal.example'] });
    ops = await addProvisioner(ca.store, 'ops', {});
  });
  after(() => ca.close());

  it('issues inside the constraint', async () => {
    const token = await mint(ops, { subject: 'svc.internal.example' });
    const issued = await ca.authority.sign({
      csr: makeCsr(['svc.internal.example']).pem,
      token,
      audiences: [AUD],
      requester: 't',
    });
    assert.equal(parseCertificate(issued.der).commonName, 'svc.internal.example');
  });

  it('issues nothing, and logs a lint_failed bug, when the draft fails a lint', async () => {
    const token = await mint(ops, { subject: 'svc.other.example' });
    const err = await unchanged(ca, () =>
      rejectsWith(
        ca.authority.sign({ csr: makeCsr(['svc.other.example']).pem, token, audiences: [AUD], requester: 't' }),
        'internal',
        'pre-signing checks',
      ),
    );
    assert.ok(err.cause instanceof PkiError && err.cause.code === 'lintFailed');
    const line = ca.logger.lines.find((l) => l.event === 'lint_failed');
    assert.ok(line !== undefined, 'a lint_failed line was logged');
    assert.equal(line.level, 'error');
    assert.equal(line.fields.bug, true);
    assert.match(String(line.fields.reason), /names_within_issuer_constraints/);
    assert.ok(!ca.logger.text().includes(token));
    assert.ok(err instanceof AuthorityError);
  });
});
