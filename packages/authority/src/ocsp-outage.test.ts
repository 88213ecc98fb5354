import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { generateKeyPair, issuerHashes, ocspErrorResponse, publicKeyOf } from '@shortleaf/pki';
import { startPostgres } from '@shortleaf/store/postgres-testing';
import { createAuthority } from './authority.js';
import { loadActiveIssuer } from './issuer.js';
import { createOcspResponder } from './ocsp-responder.js';
import { createOcspSignerManager } from './ocsp-signers.js';
import { DAY, HOUR, T0, URLS, memoryLogger, movableClock, ocspRequest, passphraseSealer } from './test-fixtures.js';
import { postgresDatabase, setUpIntermediate } from './test-instances.js';

// While PostgreSQL restarts, OCSP keeps answering what it pre-signed (even past the point where
// it would re-sign, as long as the answer is valid) and tells everyone else to ask again
// (`tryLater`, RFC 6960 §2.3), never `internalError`; it answers in full once the database is back.
describe('OCSP responder through a PostgreSQL restart', () => {
  it('answers from its cache, says tryLater for the rest, and recovers by itself', async (t) => {
    const server = await startPostgres();
    t.after(() => server.destroy());
    const store = await (await postgresDatabase(() => server.createDatabase())(t))();
    const clock = movableClock(T0);
    const sealer = passphraseSealer();
    const logger = memoryLogger();
    await setUpIntermediate(store, sealer, clock);
    const issuer = await loadActiveIssuer(store, sealer);
    const random = (n: number) => new Uint8Array(randomBytes(n));
    const authority = createAuthority({ store, issuer, clock, random, urls: URLS, logger });
    const signers = createOcspSignerManager({ authority, lifetimeMs: 3 * DAY, logger, onRotate: () => undefined });
    await signers.start();
    t.after(() => signers.stop());
    const ocsp = createOcspResponder({
      store,
      issuer,
      intermediateResponder: () => signers.current(),
      rootResponder: null,
      clock,
      logger,
      validityMs: 12 * HOUR,
      maxCacheEntries: 100,
    });
    const leaf = async () =>
      (
        await authority.issueServerCertificate({
          publicKey: publicKeyOf(generateKeyPair('EC-P256').privateKey),
          names: ['svc.internal'],
          lifetimeMs: DAY,
        })
      ).serial;
    const request = (serial: string) => ocspRequest(issuerHashes(issuer.certificate, 'sha1'), serial);
    const asked = await leaf();
    const unasked = await leaf();
    assert.equal((await ocsp.respond(request(asked))).outcome, 'good');

    await server.stop();
    clock.advance(7 * HOUR); // past half the validity: it would re-sign now, and cannot
    const kept = await ocsp.respond(request(asked));
    assert.deepEqual([kept.outcome, kept.hit], ['good', true]);
    const later = await ocsp.respond(request(unasked));
    assert.equal(later.outcome, 'tryLater');
    assert.deepEqual(later.body, ocspErrorResponse('tryLater'));
    assert.equal(later.cache, null, 'no HTTP cache keeps it');

    await server.start();
    const deadline = Date.now() + 30_000;
    let answer = await ocsp.respond(request(unasked));
    while (answer.outcome === 'tryLater' && Date.now() < deadline) {
      await sleep(100);
      answer = await ocsp.respond(request(unasked));
    }
    assert.equal(answer.outcome, 'good');
  });
});
