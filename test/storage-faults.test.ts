// The disk fills up under a running server: issuance answers 503 storageUnavailable, writes
// nothing, and works again once space is back, without a restart. The fault is real: the data
// directory lives on a small tmpfs mounted for this test (needs root; skipped otherwise).
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { run, shortleafOk, tempDir } from './helpers/cli.js';
import { tableCounts } from './helpers/data.js';
import { assertProblem, request } from './helpers/http.js';
import { startServer, type RunningServer } from './helpers/server.js';
import { mintToken } from './helpers/workspace.js';
import { crypto as acmeCrypto } from 'acme-client';

describe('disk full under a running server', () => {
  const dir = tempDir();
  const mnt = dir.file('mnt');
  const data = `${mnt}/data`;
  const filler = `${mnt}/filler`;
  let mounted = false;
  let server: RunningServer | undefined;

  before(async () => {
    mkdirSync(mnt);
    const m = await run('mount', ['-t', 'tmpfs', '-o', 'size=32m,mode=0700', 'tmpfs', mnt]);
    mounted = m.code === 0;
  });
  after(async () => {
    await server?.stop();
    if (mounted) await run('umount', ['-l', mnt]);
    dir.remove();
  });

  it('503 storageUnavailable, no rows written, and recovery once space is back', { timeout: 120_000 }, async (t) => {
    if (!mounted) return t.skip('cannot mount a tmpfs here (needs root)');
    await shortleafOk(['init', '--data', data]);
    server = await startServer({ data });
    const rootPem = readFileSync(`${data}/offline-root/root.crt`, 'utf8');
    const jwk = JSON.parse(readFileSync(`${data}/provisioners/admin.jwk`, 'utf8')) as Parameters<
      typeof mintToken
    >[0]['privateJwk'];
    const [, csr] = await acmeCrypto.createCsr(
      { commonName: 'disk.test', altNames: ['disk.test'] },
      await acmeCrypto.createPrivateEcdsaKey(),
    );
    const sign = async () =>
      request(`${server!.api}/api/v1/sign`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          csr: csr.toString(),
          token: await mintToken({
            provisioner: 'admin',
            privateJwk: jwk,
            caUrl: server!.publicUrl,
            subject: 'disk.test',
            sans: ['disk.test'],
          }),
        }),
        ca: rootPem,
        servername: 'localhost',
      });
    assert.equal((await sign()).status, 201);

    // Fill the file system to the last block.
    const fd = openSync(filler, 'w');
    for (const size of [1 << 20, 64 << 10, 4 << 10, 512]) {
      const chunk = Buffer.alloc(size, 1);
      try {
        for (;;) writeSync(fd, chunk);
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
      }
    }
    closeSync(fd);

    // The WAL may still have room it can reuse: issue until the disk says no.
    let first503 = null;
    for (let i = 0; i < 200 && first503 === null; i++) {
      const res = await sign();
      if (res.status === 201) continue;
      first503 = res;
    }
    assert.ok(first503 !== null, 'the full disk never refused a write');
    assertProblem(first503, 503, 'storageUnavailable');
    const counts = await tableCounts(data);
    for (let i = 0; i < 5; i++) assertProblem(await sign(), 503, 'storageUnavailable');
    assert.deepEqual(await tableCounts(data), counts, 'failed requests leave the database as it was');
    assert.equal(server.exited(), false);

    // Space comes back: the very same process issues again.
    rmSync(filler);
    const res = await sign();
    assert.equal(res.status, 201, res.text);
    assert.equal(server.exited(), false);
  });
});
