import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PkiError } from '@shortleaf/pki';
import { createCrlPublisher } from './crl-publisher.js';
import { AuthorityError } from './errors.js';
import { DAY, HOUR, createTestCa, type TestCa } from './test-fixtures.js';

describe('CRL publisher: lint before publishing', () => {
  let ca: TestCa;
  before(async () => {
    ca = await createTestCa();
  });
  after(() => ca.close());

  const publisher = (issuer: TestCa['issuer']) =>
    createCrlPublisher({
      store: ca.store,
      issuer,
      clock: ca.clock,
      logger: ca.logger,
      distributionPoint: 'http://status.test/crl',
      validityMs: DAY,
      refreshAfterMs: 8 * HOUR,
      rebuildDelayMs: 10,
    });

  it('publishes a CRL that passes every lint, numbers growing', async () => {
    const p = publisher(ca.issuer);
    const first = await p.rebuild();
    const second = await p.rebuild();
    p.stop();
    assert.ok(second.number > first.number);
    assert.equal(ca.logger.lines.filter((l) => l.event === 'lint_failed').length, 0);
  });

  it('publishes nothing, and logs a lint_failed bug, when the CRL it built fails a lint', async () => {
    // A bug upstream of the builder: the issuer's key identifier handed to it is not the certificate's.
    const wrong = new Uint8Array(ca.issuer.info.subjectKeyIdentifier).map((b, i) => (i === 0 ? b ^ 1 : b));
    const broken = { ...ca.issuer, info: { ...ca.issuer.info, subjectKeyIdentifier: wrong } };
    const before = await ca.store.revocations.latestCrl(ca.issuer.id);
    const p = publisher(broken);
    await assert.rejects(p.rebuild(), (err: unknown) => {
      assert.ok(err instanceof AuthorityError);
      assert.equal(err.code, 'internal');
      assert.ok(err.cause instanceof PkiError && err.cause.code === 'lintFailed');
      return true;
    });
    p.stop();
    assert.deepEqual(
      (await ca.store.revocations.latestCrl(ca.issuer.id))?.number,
      before?.number,
      'nothing was stored',
    );
    const line = ca.logger.lines.find((l) => l.event === 'lint_failed');
    assert.ok(line !== undefined);
    assert.equal(line.level, 'error');
    assert.equal(line.fields.bug, true);
    assert.match(String(line.fields.reason), /crl_authority_key_identifier_matches_issuer/);
  });
});
