import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runHook } from './hooks.js';

describe('renewal hooks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shortleaf-hooks-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs a shell command and reports its exit status and output', async () => {
    const marker = join(dir, 'ran');
    const ok = await runHook({ kind: 'exec', command: `echo reloaded > ${marker} && echo done`, timeoutMs: 5_000 });
    assert.deepEqual(ok, { ok: true, detail: 'exited 0: done' });
    assert.equal(readFileSync(marker, 'utf8'), 'reloaded\n');
    const failed = await runHook({ kind: 'exec', command: 'echo "nginx: bad config" >&2; exit 3', timeoutMs: 5_000 });
    assert.equal(failed.ok, false);
    assert.match(failed.detail, /exited 3: nginx: bad config/);
  });

  it('kills a hook that runs past its time limit', async () => {
    const slow = await runHook({ kind: 'exec', command: 'sleep 10', timeoutMs: 200 });
    assert.equal(slow.ok, false);
    assert.match(slow.detail, /SIGKILL after 200 ms/);
  });

  it('sends a signal to the process named in a pid file', async () => {
    const child = spawn(
      process.execPath,
      [
        '-e',
        "process.on('SIGHUP', () => { console.log('hup'); process.exit(0); }); console.log('ready'); setInterval(() => {}, 1000)",
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    after(() => child.kill('SIGKILL'));
    const lines = (async function* () {
      let buffer = '';
      for await (const chunk of child.stdout!) {
        buffer += (chunk as Buffer).toString();
        let nl;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          yield buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
        }
      }
    })();
    // The handler is installed before 'ready' is printed: signalling earlier would kill the child.
    assert.equal((await lines.next()).value, 'ready');
    const pidFile = join(dir, 'pid');
    writeFileSync(pidFile, `${child.pid}\n`);
    const output = lines.next().then((r) => String(r.value));
    const sent = await runHook({ kind: 'signal', signal: 'SIGHUP', pidFile });
    assert.deepEqual(sent, { ok: true, detail: `sent SIGHUP to process ${child.pid}` });
    assert.equal(await output, 'hup');
    writeFileSync(pidFile, 'not a pid');
    assert.deepEqual(await runHook({ kind: 'signal', signal: 'SIGHUP', pidFile }), {
      ok: false,
      detail: `${pidFile} does not hold a process id`,
    });
    const missing = await runHook({ kind: 'signal', signal: 'SIGHUP', pidFile: join(dir, 'nope') });
    assert.equal(missing.ok, false);
    assert.match(missing.detail, /could not send SIGHUP/);
  });
});
