// The OCSP responder against what an unauthenticated client can send: many forms of one
// question, many questions, several CertIDs in one request (RFC 6960 §4.1.1).
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { MAX_OCSP_CERT_IDS, issuerHashes, minimalOcspRequest, parseOcspRequest, type OcspHash } from '@shortleaf/pki';
import { keyOf, requestKey } from './ocsp-cache.js';
import { createOcspResponder, type OcspResponderService } from './ocsp-responder.js';
import { createOcspSignerManager } from './ocsp-signers.js';
import { createRevoker, type Revoke } from './revoke.js';
import {
  AUD,
  DAY,
  HOUR,
  T0,
  addProvisioner,
  createTestCa,
  makeCsr,
  makeRoot,
  mint,
  ocspRequest,
  type TestCa,
  type TestProvisioner,
} from './test-fixtures.js';

function der(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const n = body.length;
  const len = n < 0x80 ? Buffer.of(n) : n < 0x100 ? Buffer.of(0x81, n) : Buffer.of(0x82, n >> 8, n & 0xff);
  return Buffer.concat([Buffer.of(tag), len, body]);
}

/**
 * A request for one CertID that no other call makes: a requestorName and an unknown extension
 * (both ignored, RFC 6960 §4.4) padded to `pad` bytes and numbered `i`. What the attack in issue 12
 * sent, 60,000 times.
 */
function padded(certIdDer: Uint8Array, i: number, pad = 3_900): Uint8Array {
  const tag = Buffer.from(`${i}:`.padEnd(pad, 'x'));
  const requestorName = der(0xa1, der(0x81, tag)); // [1] EXPLICIT GeneralName rfc822Name
  const requestList = der(0x30, der(0x30, Buffer.from(certIdDer)));
  const extension = der(0x30, Buffer.from('06032a0304', 'hex'), der(0x04, tag)); // OID 1.2.3.4
  return new Uint8Array(der(0x30, der(0x30, requestorName, requestList, der(0xa2, der(0x30, extension)))));
}

/** A request listing `certIds` (their DER), with a nonce when given. */
function multi(certIds: readonly Uint8Array[], nonce?: Buffer): Uint8Array {
  const list = der(0x30, ...certIds.map((c) => der(0x30, Buffer.from(c))));
  const ext =
    nonce === undefined
      ? []
      : [der(0xa2, der(0x30, der(0x30, Buffer.from('06092b0601050507300102', 'hex'), der(0x04, der(0x04, nonce)))))];
  return new Uint8Array(der(0x30, der(0x30, list, ...ext)));
}

interface Node {
  tag: number;
  whole: Buffer;
  content: Buffer;
}

/** The TLVs inside `buf`, one level deep (definite lengths, as DER has). */
function children(buf: Buffer): Node[] {
  const out: Node[] = [];
  for (let pos = 0; pos < buf.length;) {
    let len = buf[pos + 1]!;
    let head = 2;
    if (len & 0x80) {
      head += len & 0x7f;
      len = buf.subarray(pos + 2, pos + head).reduce((n, b) => n * 256 + b, 0);
    }
    out.push({
      tag: buf[pos]!,
      whole: buf.subarray(pos, pos + head + len),
      content: buf.subarray(pos + head, pos + head + len),
    });
    pos += head + len;
  }
  return out;
}

/** The SingleResponses of a successful OCSPResponse (RFC 6960 §4.2.1): each one's CertID DER and status. */
function singleResponses(body: Uint8Array): { certId: string; status: string }[] {
  const [, responseBytes] = children(children(Buffer.from(body))[0]!.content);
  const [, response] = children(children(responseBytes!.content)[0]!.content); // [0] { SEQUENCE { type, OCTET STRING } }
  const tbs = children(children(children(response!.content)[0]!.content)[0]!.content);
  const list = tbs.find((t, i) => i > 0 && t.tag === 0x30)!; // after ResponderID and producedAt
  return children(list.content).map((single) => {
    const [certId, status] = children(single.content);
    return {
      certId: certId!.whole.toString('hex'),
      status: ({ 0x80: 'good', 0xa1: 'revoked', 0x82: 'unknown' } as Record<number, string>)[status!.tag]!,
    };
  });
}

/** Heap in use after a full collection: what a structure really keeps, not garbage not yet swept. */
function heapAfterGc(): number {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  return process.memoryUsage().heapUsed;
}

describe('OCSP responder: memory an unauthenticated client can grow', () => {
  let ca: TestCa;
  let ops: TestProvisioner;
  let revoke: Revoke;
  let stopSigners: () => void;
  let signers: ReturnType<typeof createOcspSignerManager>;
  let current: OcspResponderService | undefined;

  const issue = async (name: string) =>
    ca.authority.sign({
      csr: makeCsr([name]).pem,
      token: await mint(ops, { subject: name, now: ca.clock.now() }),
      notAfter: '24h',
      audiences: [AUD],
      requester: 't',
    });
  const leafRequest = (serial: string, hash: OcspHash = 'sha1', nonce?: Buffer) =>
    ocspRequest(issuerHashes(ca.issuer.certificate, hash), serial, hash, nonce);
  const certIdOf = (request: Uint8Array) => parseOcspRequest(request).certIds[0]!;
  const responder = (limits: { maxCacheEntries?: number; maxCacheBytes?: number; root?: boolean } = {}) =>
    (current = createOcspResponder({
      store: ca.store,
      issuer: ca.issuer,
      intermediateResponder: () => signers.current(),
      // Stands in for the root-delegated responder where only which CertIDs it may answer matters.
      rootResponder: limits.root === true ? signers.current() : null,
      clock: ca.clock,
      logger: ca.logger,
      validityMs: 4 * HOUR,
      maxCacheEntries: limits.maxCacheEntries ?? 10_000,
      ...(limits.maxCacheBytes === undefined ? {} : { maxCacheBytes: limits.maxCacheBytes }),
    }));

  before(async () => {
    ca = await createTestCa();
    ops = await addProvisioner(ca.store, 'ops', {});
    signers = createOcspSignerManager({
      authority: ca.authority,
      lifetimeMs: 3 * DAY,
      logger: ca.logger,
      onRotate: () => current?.clear(),
    });
    await signers.start();
    stopSigners = () => signers.stop();
    revoke = createRevoker({
      store: ca.store,
      clock: ca.clock,
      logger: ca.logger,
      onRevoked: async (serial) => current?.resign(serial),
    });
  });
  after(async () => {
    stopSigners();
    await ca.close();
  });
  beforeEach(() => ca.clock.set(T0));

  it('keys answers on the CertID: 4,000 distinct padded requests for one CertID leave one entry and keep no request bytes', async () => {
    const ocsp = responder();
    const cert = await issue('pad.internal');
    const minimal = leafRequest(cert.serial);
    const first = await ocsp.respond(minimal);
    assert.equal(first.outcome, 'good');
    const certId = certIdOf(minimal);
    const baseline = heapAfterGc();
    const bytesBefore = ocsp.stats().bytes;
    let hits = 0;
    for (let i = 0; i < 4_000; i++) {
      const answer = await ocsp.respond(padded(certId.der, i));
      assert.ok(
        Buffer.from(answer.body).equals(first.body),
        'every form of the question gets the one pre-signed answer',
      );
      if (answer.hit) hits++;
    }
    assert.equal(hits, 4_000, 'found by the CertID, without signing');
    // 4,000 requests of ~7.9 kB: kept by their bytes they would hold over 30 MB.
    const grown = heapAfterGc() - baseline;
    assert.ok(grown < 8 * 1024 * 1024, `the heap grew by ${(grown / 1048576).toFixed(1)} MB`);
    assert.equal(
      ocsp.lookup(padded(certId.der, 7)),
      null,
      'a request form other than the minimal one is never remembered by its bytes',
    );
    assert.deepEqual(ocsp.stats(), { entries: 1, bytes: bytesBefore });
    assert.equal(ocsp.lookup(minimal)?.hit, true, 'the minimal form is still answered without parsing');
  });

  it('holds its byte budget when many CertIDs are asked, in every hash form, and keeps no unknown serial', async () => {
    const probe = responder();
    const one = await issue('size.internal');
    await probe.respond(leafRequest(one.serial));
    const perEntry = probe.stats().bytes;
    assert.ok(
      perEntry >
        (await probe.respond(leafRequest(one.serial))).body.length +
          minimalOcspRequest(certIdOf(leafRequest(one.serial))).length,
      'an entry is counted at more than its body and key',
    );

    const budget = 10 * perEntry;
    const ocsp = responder({ maxCacheBytes: budget });
    const serials: string[] = [];
    for (let i = 0; i < 8; i++) serials.push((await issue(`budget-${i}.internal`)).serial);
    for (const serial of serials) {
      for (const hash of ['sha1', 'sha256', 'sha384', 'sha512'] as const) {
        assert.equal((await ocsp.respond(leafRequest(serial, hash))).outcome, 'good');
        assert.ok(ocsp.stats().bytes <= budget, `${ocsp.stats().bytes} bytes held against a budget of ${budget}`);
      }
    }
    assert.ok(ocsp.stats().entries >= 8 && ocsp.stats().entries <= 10, `${ocsp.stats().entries} entries`);
    const last = serials.at(-1)!;
    assert.equal((await ocsp.respond(leafRequest(last, 'sha512'))).hit, true, 'the most recently signed answers stay');
    assert.equal(
      (await ocsp.respond(leafRequest(serials[0]!, 'sha1'))).hit,
      false,
      'the least recently signed went first',
    );

    const empty = responder({ maxCacheBytes: budget });
    for (let i = 0; i < 200; i++)
      assert.equal(
        (await empty.respond(leafRequest(randomBytes(16).toString('hex').replace(/^0+/, '') || '1'))).outcome,
        'unknown',
      );
    assert.deepEqual(empty.stats(), { entries: 0, bytes: 0 }, 'unknown serials are never kept');
  });

  it('answers an answer larger than the whole budget without keeping it', async () => {
    const ocsp = responder({ maxCacheBytes: 100 });
    const cert = await issue('tiny.internal');
    assert.equal((await ocsp.respond(leafRequest(cert.serial))).outcome, 'good');
    assert.deepEqual(ocsp.stats(), { entries: 0, bytes: 0 });
  });

  it('answers several CertIDs in one signed response, one SingleResponse each, in order (RFC 6960 §4.1.1)', async () => {
    const ocsp = responder();
    const good = await issue('multi-good.internal');
    const gone = await issue('multi-revoked.internal');
    await revoke({ serial: gone.serial, reason: 'keyCompromise', actor: 't', requester: 't' });
    const ids = [
      certIdOf(leafRequest(good.serial)),
      certIdOf(leafRequest(gone.serial, 'sha256')),
      certIdOf(leafRequest('7e57')),
    ];
    const answer = await ocsp.respond(multi(ids.map((c) => c.der)));
    assert.equal(answer.outcome, 'revoked', 'counted under the most telling status');
    assert.notEqual(answer.cache, null, 'without a nonce an HTTP cache may keep it');
    assert.deepEqual(singleResponses(answer.body), [
      { certId: Buffer.from(ids[0]!.der).toString('hex'), status: 'good' },
      { certId: Buffer.from(ids[1]!.der).toString('hex'), status: 'revoked' },
      { certId: Buffer.from(ids[2]!.der).toString('hex'), status: 'unknown' },
    ]);
    assert.equal(ocsp.stats().entries, 0, 'a combination is the client’s to choose: never kept');
    const withNonce = await ocsp.respond(
      multi(
        ids.map((c) => c.der),
        randomBytes(16),
      ),
    );
    assert.equal(withNonce.cache, null);
    assert.equal(singleResponses(withNonce.body).length, 3);
    const most = Array.from({ length: MAX_OCSP_CERT_IDS }, () => ids[0]!.der);
    assert.equal((await ocsp.respond(multi(most))).outcome, 'good', `${MAX_OCSP_CERT_IDS} CertIDs are answered`);
    assert.equal(
      (await ocsp.respond(multi([...most, ids[0]!.der]))).outcome,
      'malformedRequest',
      `more than ${MAX_OCSP_CERT_IDS} are not`,
    );
  });

  it('refuses as unauthorized a request mixing issuers, since one signer cannot answer for both (RFC 6960 §4.2.2.2)', async () => {
    const ocsp = responder({ root: true });
    const leaf = await issue('mixed.internal');
    const leafId = certIdOf(leafRequest(leaf.serial));
    const intermediateId = certIdOf(
      ocspRequest(issuerHashes(ca.root.certificate, 'sha1'), ca.issuer.certificate.serial),
    );
    const strangerId = certIdOf(
      ocspRequest(issuerHashes(makeRoot({ commonName: 'Stranger' }).certificate, 'sha1'), leaf.serial),
    );
    assert.equal((await ocsp.respond(multi([leafId.der, intermediateId.der]))).outcome, 'unauthorized');
    assert.equal((await ocsp.respond(multi([leafId.der, strangerId.der]))).outcome, 'unauthorized');
    assert.equal((await ocsp.respond(multi([leafId.der, leafId.der]))).outcome, 'good');
  });

  it('keys the cache on what decides the answer: each hash form of a CertID is its own key', () => {
    const a = certIdOf(leafRequest('0abc'));
    const b = certIdOf(leafRequest('0abc', 'sha256'));
    assert.notEqual(keyOf(a), keyOf(b));
    assert.equal(keyOf(a), keyOf(certIdOf(padded(a.der, 1, 10))));
    // The longest CertID there is, SHA-512 with a 20-octet serial, still takes the fast path.
    const longest = leafRequest('f'.repeat(40), 'sha512');
    assert.equal(longest.length, 185);
    assert.equal(requestKey(longest), keyOf(certIdOf(longest)));
  });
});
