import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { after, before, beforeEach, describe, it } from 'node:test';
import { PkiError, nameToString, parseCertificate } from '@shortleaf/pki';
import { INTERNAL_PROVISIONER, type IssuedCertificate } from './authority.js';
import {
  AUD,
  HOUR,
  T0,
  addProvisioner,
  at,
  createTestCa,
  foreignLeaf,
  makeCsr,
  makeRoot,
  mint,
  rejectsWith,
  unchanged,
  type TestCa,
  type TestCsr,
  type TestProvisioner,
} from './test-fixtures.js';

const NAMES = ['api.internal', '10.1.2.3', 'spiffe://example.org/api'];

describe('authority.renew', () => {
  let ca: TestCa;
  let ops: TestProvisioner;
  let key: TestCsr;
  let original: IssuedCertificate;

  before(async () => {
    ca = await createTestCa();
    ops = await addProvisioner(ca.store, 'ops', {});
    key = makeCsr(NAMES);
    original = await ca.authority.sign({
      csr: key.pem,
      token: await mint(ops, { subject: NAMES[0]!, sans: NAMES }),
      notAfter: '6h',
      audiences: [AUD],
      requester: 't',
    });
  });
  after(() => ca.close());
  beforeEach(() => ca.clock.set(at(T0, 3 * HOUR)));

  const renew = (clientCertificate: Uint8Array | null, csr?: unknown) =>
    ca.authority.renew({ clientCertificate, csr, requester: 'renewer' });
  const refused = (p: () => Promise<unknown>, code: string, fragment: string, errorClass?: typeof PkiError) =>
    unchanged(ca, () => rejectsWith(p(), code, fragment, errorClass));

  it('renews a certificate we issued: new serial, same names and key, same lifetime length', async () => {
    const before = await ca.counts();
    const renewed = await renew(original.der);
    const old = parseCertificate(original.der);
    const cert = parseCertificate(renewed.der);
    assert.notEqual(renewed.serial, original.serial);
    assert.deepEqual(cert.names.map(nameToString), old.names.map(nameToString));
    assert.equal(cert.commonName, 'api.internal');
    assert.ok(Buffer.from(cert.publicKey.spki).equals(old.publicKey.spki), 'same key without a CSR');
    assert.equal(cert.notBefore.toISOString(), at(T0, 3 * HOUR - 60_000).toISOString());
    assert.equal(cert.notAfter.toISOString(), at(T0, 9 * HOUR).toISOString());
    assert.equal(cert.notAfter.getTime() - cert.notBefore.getTime(), old.notAfter.getTime() - old.notBefore.getTime());

    const row = await ca.store.getCertificate(renewed.serial);
    assert.equal(row?.status, 'issued');
    assert.ok(row?.der && Buffer.from(row.der).equals(renewed.der));
    assert.equal(row?.provisioner, 'ops');
    assert.equal(row?.requester, 'renewer');
    const audit = (await ca.store.listAudit()).find((e) => e.serial === renewed.serial);
    assert.equal(audit?.action, 'renew');
    assert.equal(audit?.actor, `certificate:${original.serial}`);

    const afterCounts = await ca.counts();
    assert.equal(afterCounts.certificates, before.certificates! + 1);
    assert.equal(afterCounts.token_uses, before.token_uses, 'renewal spends no token');
  });

  it('renews a renewed certificate', async () => {
    const first = await renew(original.der);
    ca.clock.advance(HOUR);
    const second = await renew(first.der);
    assert.equal(parseCertificate(second.der).notAfter.toISOString(), at(T0, 10 * HOUR).toISOString());
  });

  it('rekeys when a CSR comes with the request', async () => {
    const next = makeCsr(NAMES);
    const renewed = await renew(original.der, next.pem);
    const cert = parseCertificate(renewed.der);
    assert.ok(Buffer.from(cert.publicKey.spki).equals(next.publicKey.spki), 'the new key');
    assert.deepEqual(cert.names.map(nameToString), ['dns:api.internal', 'ip:10.1.2.3', 'uri:spiffe://example.org/api']);
  });

  it("rekeys with a CSR naming fewer names, keeping the certificate's names", async () => {
    const cert = parseCertificate((await renew(original.der, makeCsr([]).pem)).der);
    assert.equal(cert.names.length, 3);
  });

  it('refuses a rekey CSR that names an extra name', async () => {
    await refused(
      () => renew(original.der, makeCsr([...NAMES, 'admin.internal']).pem),
      'csrNameNotAuthorized',
      'dns:admin.internal',
    );
  });

  it('refuses a malformed rekey CSR', async () => {
    await refused(() => renew(original.der, 'garbage'), 'badPem', 'PEM', PkiError);
    await refused(() => renew(original.der, 17), 'badCsr', 'PEM string', PkiError);
  });

  it('requires a client certificate', async () => {
    await refused(() => renew(null), 'clientCertificateRequired', 'mutual TLS');
  });

  it('refuses bytes that are not a certificate', async () => {
    await refused(() => renew(Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x00)), 'certificateUnknown', 'cannot be parsed');
  });

  it('refuses a certificate from another CA', async () => {
    const other = makeRoot({ commonName: 'Other Root' });
    const der = foreignLeaf(other, { names: NAMES, publicKey: key.publicKey });
    await refused(() => renew(der), 'certificateUnknown', 'not issued by this CA');
  });

  it('refuses a certificate whose serial we know but whose bytes differ, even under our own key', async () => {
    const forged = foreignLeaf(
      { certificate: ca.issuer.certificate, signer: ca.issuer.signer },
      { names: NAMES, publicKey: key.publicKey, serialHex: original.serial, now: at(T0, 1000) },
    );
    assert.equal(parseCertificate(forged).serial, original.serial);
    await refused(() => renew(forged), 'certificateUnknown', 'not issued by this CA');
  });

  it('refuses a certificate that was reserved but never completed', async () => {
    const der = foreignLeaf(
      { certificate: ca.issuer.certificate, signer: ca.issuer.signer },
      { names: ['ghost.internal'], publicKey: key.publicKey },
    );
    const serial = parseCertificate(der).serial;
    await ca.store.reserveCertificate({
      certificate: {
        serial,
        issuerId: ca.issuer.id,
        subject: 'ghost.internal',
        names: ['dns:ghost.internal'],
        notBefore: T0,
        notAfter: at(T0, 24 * HOUR),
        provisioner: 'ops',
        requester: 't',
        createdAt: T0,
      },
      audit: { at: T0, action: 'issue', actor: 'test', serial, detail: {} },
    });
    await refused(() => renew(der), 'certificateUnknown', 'not issued by this CA');
  });

  it('refuses an expired certificate', async () => {
    ca.clock.set(at(T0, 6 * HOUR + 1000));
    await refused(() => renew(original.der), 'certificateExpired', 'has expired');
  });

  it('refuses a certificate that is not valid yet', async () => {
    ca.clock.set(at(T0, -2 * 60_000));
    await refused(() => renew(original.der), 'certificateExpired', 'not valid yet');
  });

  it("does not renew the CA's own server certificate over the REST door", async () => {
    const server = await ca.authority.issueServerCertificate({
      publicKey: key.publicKey,
      names: ['ca.internal'],
      lifetimeMs: 24 * HOUR,
    });
    assert.equal((await ca.store.getCertificate(server.serial))?.provisioner, INTERNAL_PROVISIONER);
    await refused(() => renew(server.der), 'unknownProvisioner', INTERNAL_PROVISIONER);
  });
});
