// Start-up failures and shutdown: `shortleaf serve` must either serve or exit with a reason,
// never hang half-started, and must shut down cleanly on SIGTERM as soon as it says it listens.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { shortleaf, shortleafOk, tempDir } from './helpers/cli.js';
import { serveExpectingFailure, startServer } from './helpers/server.js';

describe('serve start-up and shutdown', () => {
  const dir = tempDir();
  const data = dir.file('data');
  let busy: Server;
  let busyPort = 0;

  before(async () => {
    await shortleafOk(['init', '--data', data]);
    busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    busyPort = (busy.address() as { port: number }).port;
  });
  after(async () => {
    await new Promise((resolve) => busy.close(resolve));
    dir.remove();
  });

  // serveExpectingFailure adds port-0 listeners unless told not to; these tests pick their own.
  const serveWith = (listen: string, statusListen: string) =>
    serveExpectingFailure({
      data,
      noListenFlags: true,
      args: ['--listen', listen, '--status-listen', statusListen],
      timeoutMs: 15_000,
    });

  it('the API port is taken: exits 1 naming the address', async () => {
    const r = await serveWith(`127.0.0.1:${busyPort}`, '127.0.0.1:0');
    assert.equal(r.listened, false, r.stderr);
    assert.equal(r.timedOut, false, `serve must exit, not hang:\n${r.stderr}`);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`EADDRINUSE.*127\\.0\\.0\\.1:${busyPort}`));
  });

  it('the status port is taken (after the API port is bound): exits 1 naming the address, not hanging', async () => {
    const r = await serveWith('127.0.0.1:0', `127.0.0.1:${busyPort}`);
    assert.equal(r.listened, false, r.stderr);
    assert.equal(r.timedOut, false, `serve must exit, not hang with its API port bound:\n${r.stderr}`);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`EADDRINUSE.*127\\.0\\.0\\.1:${busyPort}`));
  });

  it('SIGTERM as soon as it logs "listening" is a clean shutdown (exit 0, "stopped")', async () => {
    // The signal handler must be in place before readiness is announced; a supervisor may stop
    // the server the moment it is ready. Repeated because the window, if any, is short.
    for (let i = 0; i < 8; i++) {
      const s = await startServer({ data });
      const exit = await s.stop();
      assert.deepEqual(
        exit,
        { code: 0, signal: null },
        `attempt ${i + 1}: serve was killed by the signal instead of shutting down\n${s.stderr()}`,
      );
      assert.ok(
        s.logs().some((l) => l.event === 'stopped'),
        `attempt ${i + 1}: ${s.stderr()}`,
      );
    }
  });

  it('the CLI prints its usage and exits 2 for an unknown verb or flag', async () => {
    const verb = await shortleaf(['frobnicate']);
    assert.equal(verb.code, 2);
    assert.match(verb.stderr, /unknown command "frobnicate"/);
    const flag = await shortleaf(['migrate', '--data', dir.file('x'), '--bogus']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /--bogus/);
  });
});
