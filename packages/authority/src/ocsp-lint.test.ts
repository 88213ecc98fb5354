import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { issuerHashes } from '@shortleaf/pki';
import { createOcspResponder } from './ocsp-responder.js';
import { createOcspSignerManager, type ManagedResponder } from './ocsp-signers.js';
import {
  AUD,
  DAY,
  HOUR,
  addProvisioner,
  createTestCa,
  makeCsr,
  mint,
  ocspRequest,
  type TestCa,
  type TestProvisioner,
} from './test-fixtures.js';

describe('OCSP responder: lint each response as it is signed', () => {
  let ca: TestCa;
  let ops: TestProvisioner;
  let signers: ReturnType<typeof createOcspSignerManager>;
  let serial: string;

  before(async () => {
    ca = await createTestCa();
    ops = await addProvisioner(ca.store, 'ops', {});
    signers = createOcspSignerManager({
      authority: ca.authority,
      lifetimeMs: 3 * DAY,
      logger: ca.logger,
      onRotate: () => undefined,
    });
    await signers.start();
    serial = (
      await ca.authority.sign({
        csr: makeCsr(['a.internal']).pem,
        token: await mint(ops, { subject: 'a.internal' }),
        audiences: [AUD],
        requester: 't',
      })
    ).serial;
  });
  after(async () => {
    signers.stop();
    await ca.close();
  });

  const responderWith = (intermediateResponder: () => ManagedResponder) =>
    createOcspResponder({
      store: ca.store,
      issuer: ca.issuer,
      intermediateResponder,
      rootResponder: null,
      clock: ca.clock,
      logger: ca.logger,
      validityMs: 4 * HOUR,
      maxCacheEntries: 100,
    });
  const request = () => ocspRequest(issuerHashes(ca.issuer.certificate, 'sha1'), serial);

  it('answers and caches a response that passes every lint, linting it once and not on the cache hit', async () => {
    const ocsp = responderWith(() => signers.current());
    assert.equal((await ocsp.respond(request())).outcome, 'good');
    assert.equal((await ocsp.respond(request())).hit, true);
    assert.equal(ca.logger.lines.filter((l) => l.event === 'lint_failed').length, 0);
  });

  it('answers internalError, caches nothing, and logs a lint_failed bug when a response fails a lint', async () => {
    // A responder whose certificate has lapsed: every nextUpdate it could sign is already past.
    const lapsed = (): ManagedResponder => {
      const r = signers.current();
      return { ...r, certificate: { ...r.certificate, notAfter: new Date(ca.clock.now().getTime() - HOUR) } };
    };
    const ocsp = responderWith(lapsed);
    const first = await ocsp.respond(request());
    assert.equal(first.outcome, 'internalError');
    assert.equal(first.cache, null);
    assert.equal((await ocsp.respond(request())).hit, false, 'nothing was cached');
    const line = ca.logger.lines.find((l) => l.event === 'lint_failed');
    assert.ok(line !== undefined);
    assert.equal(line.level, 'error');
    assert.equal(line.fields.bug, true);
    assert.match(String(line.fields.reason), /ocsp_times_cover_now/);
  });
});
