// The OCSP lifetimes an operator sets: how long an answer is valid, and how long an HTTP cache in
// between may serve one without asking again (README "Revocation").
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, loadConfig } from './config.js';

const dir = mkdtempSync(join(tmpdir(), 'config-ocsp-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const withOcsp = (ocsp: Record<string, unknown>) => {
  const file = join(dir, 'shortleaf.json');
  writeFileSync(file, JSON.stringify({ ocsp }));
  return loadConfig(file, {});
};

describe('ocsp configuration', () => {
  it('defaults to answers valid 4 h, HTTP caches revalidating every time, 128 MiB of pre-signed answers', () => {
    const { ocsp } = loadConfig(undefined, {});
    // Durations load as milliseconds.
    assert.deepEqual(ocsp, {
      validity: 4 * 3_600_000,
      signerLifetime: 72 * 3_600_000,
      cacheEntries: 100_000,
      cacheBytes: 128 * 1024 * 1024,
      httpMaxAge: 0,
    });
  });

  it('takes an HTTP max-age of zero or a duration up to the validity', () => {
    assert.equal(withOcsp({ httpMaxAge: '0m' }).ocsp.httpMaxAge, 0);
    assert.equal(withOcsp({ httpMaxAge: '5m', validity: '1h' }).ocsp.validity, 3_600_000);
    assert.throws(
      () => withOcsp({ httpMaxAge: '5h' }),
      (err: Error) =>
        err instanceof ConfigError && /ocsp.httpMaxAge must not be longer than ocsp.validity/.test(err.message),
    );
    assert.throws(
      () => withOcsp({ httpMaxAge: 'soon' }),
      (err: Error) =>
        err instanceof ConfigError &&
        /"ocsp.httpMaxAge" has the wrong type \(expected a duration such as "0s"/.test(err.message),
    );
    assert.throws(
      () => withOcsp({ cacheBytes: 0 }),
      (err: Error) => err instanceof ConfigError && /"ocsp.cacheBytes" has the wrong type/.test(err.message),
    );
  });
});
