import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { after, before, describe, it } from 'node:test';
import { generateKeyPair, publicKeyOf, readTbsCertificate } from '@shortleaf/pki';
import {
  AUD,
  addProvisioner,
  createTestCa,
  makeCsr,
  mint,
  type TestCa,
  type TestProvisioner,
} from './test-fixtures.js';

/** The first element of a signed SEQUENCE (RFC 5280 §4.1: tbsCertificate), read without our DER module. */
function tbsOf(der: Uint8Array): Uint8Array {
  const skip = (at: number): { content: number; end: number } => {
    const first = der[at + 1]!;
    const count = first < 0x80 ? 0 : first & 0x7f;
    let length = first < 0x80 ? first : 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[at + 2 + i]!;
    return { content: at + 2 + count, end: at + 2 + count + length };
  };
  const inner = skip(skip(0).content);
  return der.subarray(skip(0).content, inner.end);
}

describe('issue: prepare, record, sign exactly the recorded bytes', () => {
  let ca: TestCa;
  let ops: TestProvisioner;

  before(async () => {
    ca = await createTestCa();
    ops = await addProvisioner(ca.store, 'ops', {});
  });
  after(() => ca.close());

  it('records the TBSCertificate with the reservation, and the signed certificate carries those very bytes', async () => {
    const token = await mint(ops, { subject: 'api.internal' });
    const issued = await ca.authority.sign({
      csr: makeCsr(['api.internal']).pem,
      token,
      audiences: [AUD],
      requester: 't',
    });
    const row = await ca.store.getCertificate(issued.serial);
    assert.ok(row?.tbsDer !== undefined, 'the reservation recorded the TBS');
    assert.ok(Buffer.from(tbsOf(issued.der)).equals(row.tbsDer));
    assert.ok(Buffer.from(row.der!).equals(issued.der));
  });

  it('does the same for the CA’s own certificates (server, delegated OCSP signer)', async () => {
    const server = await ca.authority.issueServerCertificate({
      publicKey: publicKeyOf(generateKeyPair('EC-P256').privateKey),
      names: ['localhost'],
      lifetimeMs: 3_600_000,
    });
    const ocsp = await ca.authority.issueOcspSignerCertificate({
      publicKey: publicKeyOf(generateKeyPair('EC-P256').privateKey),
      lifetimeMs: 3_600_000,
    });
    for (const issued of [server, ocsp]) {
      const row = await ca.store.getCertificate(issued.serial);
      assert.ok(row?.tbsDer !== undefined && Buffer.from(tbsOf(issued.der)).equals(row.tbsDer), issued.serial);
      // What was recorded is what an independent parser reads: the serial the row is filed under.
      assert.equal(
        Buffer.from(readTbsCertificate(row.tbsDer, { publicKey: { spki: new Uint8Array(0) } } as never).draft.serial)
          .toString('hex')
          .replace(/^0+/, ''),
        issued.serial.replace(/^0+/, ''),
      );
    }
  });
});
