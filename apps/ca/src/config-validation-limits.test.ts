import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, loadConfig } from './config.js';

describe('acme.validation limits in the configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shortleaf-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const load = (doc: unknown) => {
    const file = join(dir, `config-${n++}.json`);
    writeFileSync(file, JSON.stringify(doc));
    return loadConfig(file, {});
  };

  it('defaults to 16 at once, 4 per account, 100 pending per account and 1000 per provisioner', () => {
    const { validation } = loadConfig(undefined, {}).acme;
    assert.deepEqual(
      {
        concurrency: validation.concurrency,
        concurrencyPerAccount: validation.concurrencyPerAccount,
        maxPendingPerAccount: validation.maxPendingPerAccount,
        maxPendingPerProvisioner: validation.maxPendingPerProvisioner,
      },
      { concurrency: 16, concurrencyPerAccount: 4, maxPendingPerAccount: 100, maxPendingPerProvisioner: 1_000 },
    );
  });

  it('takes each key from the file, keeping the defaults of the others', () => {
    const { validation } = load({ acme: { validation: { maxPendingPerAccount: 5, concurrency: 32 } } }).acme;
    assert.equal(validation.maxPendingPerAccount, 5);
    assert.equal(validation.concurrency, 32);
    assert.equal(validation.concurrencyPerAccount, 4);
    assert.equal(validation.httpPort, 80);
  });

  it('refuses a count that is not a positive integer, and a per-account share above the whole', () => {
    for (const bad of [0, -1, 1.5, '4']) {
      assert.throws(
        () => load({ acme: { validation: { maxPendingPerProvisioner: bad } } }),
        (err: unknown) =>
          err instanceof ConfigError && err.message.includes('acme.validation.maxPendingPerProvisioner'),
      );
    }
    assert.throws(
      () => load({ acme: { validation: { concurrency: 2, concurrencyPerAccount: 3 } } }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /concurrencyPerAccount must not exceed acme\.validation\.concurrency/.test(err.message),
    );
  });
});
