// Restarts as production sees them. Proxies keep asking the status listener (nginx for OCSP, cron
// jobs for CRLs) while `shortleaf serve` starts: until it can answer it must refuse the connection
// or say 503 (a client can tell "not yet" from "broken"); a 500 is the server failing. nginx with
// ssl_ocsp counts a failed OCSP request against the client, so a 500 there turns good clients away.
// And a clean SIGTERM must stay clean whatever clients sent before it, oversized bodies included.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { shortleafOk, tempDir } from './helpers/cli.js';
import { assertProblem, curl } from './helpers/http.js';
import { freePort, startServer, type RunningServer } from './helpers/server.js';

/** Asks `url` again and again until `stop()`, counting answers by status ("refused" when there was no HTTP answer). */
function hammer(url: string, ca: string, stop: () => boolean): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  const count = (k: string) => seen.set(k, (seen.get(k) ?? 0) + 1);
  const once = () =>
    new Promise<void>((resolve) => {
      const send = url.startsWith('https:') ? httpsRequest : httpRequest;
      const req = send(url, { agent: false, timeout: 2_000, ...(url.startsWith('https:') ? { ca } : {}) }, (res) => {
        count(String(res.statusCode));
        res.resume();
        res.on('end', resolve);
        res.on('error', () => resolve());
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => {
        count('refused');
        resolve();
      });
      req.end();
    });
  return (async () => {
    while (!stop()) {
      await once();
      await new Promise((r) => setTimeout(r, 2)); // pacing between attempts, not synchronisation
    }
    return seen;
  })();
}

describe('serve restarting under the clients of its status listener', () => {
  const dir = tempDir();
  const data = dir.file('data');
  const servers: RunningServer[] = [];
  before(async () => {
    await shortleafOk(['init', '--data', data]);
  });
  after(async () => {
    try {
      for (const s of servers) await s.stop();
    } finally {
      dir.remove();
    }
  });

  it('neither listener answers 500 before it is ready', async () => {
    const [apiPort, statusPort] = [await freePort(), await freePort()];
    const ca = readFileSync(join(data, 'offline-root', 'root.crt'), 'utf8');
    let done = false;
    const status = hammer(`http://127.0.0.1:${statusPort}/crl`, ca, () => done);
    const api = hammer(`https://127.0.0.1:${apiPort}/health`, ca, () => done);
    try {
      servers.push(
        await startServer({
          data,
          noListenFlags: true,
          args: ['--listen', `127.0.0.1:${apiPort}`, '--status-listen', `127.0.0.1:${statusPort}`],
        }),
      );
    } finally {
      done = true;
    }
    const [s, a] = [await status, await api];
    await servers[0]?.stop();
    const report = `status listener: ${JSON.stringify(Object.fromEntries(s))}; API: ${JSON.stringify(Object.fromEntries(a))}`;
    assert.equal(s.get('500') ?? 0, 0, `the status listener answered 500 while starting (${report})`);
    assert.equal(a.get('500') ?? 0, 0, `the API answered 500 while starting (${report})`);
  });

  it('after refusing a 10 MB OCSP POST (413), SIGTERM still shuts down cleanly: exit 0 and "stopped"', async () => {
    const s = await startServer({ data });
    servers.push(s);
    writeFileSync(dir.file('10mb.bin'), Buffer.alloc(10 * 1024 * 1024, 0x30));
    const res = await curl([
      '-H',
      'content-type: application/ocsp-request',
      '--data-binary',
      `@${dir.file('10mb.bin')}`,
      `${s.statusUrl}/ocsp`,
    ]);
    assertProblem(res, 413, 'bodyTooLarge');
    const t0 = Date.now();
    const exit = await s.stop();
    const tail = s.stderr().split('\n').slice(-4).join('\n');
    assert.deepEqual(
      exit,
      { code: 0, signal: null },
      `exit ${exit.code ?? exit.signal} after ${Date.now() - t0} ms (13: Node gave up on a pending await, the shutdown never finished)\n${tail}`,
    );
    assert.ok(
      s.logs().some((l) => l.event === 'stopped'),
      `no "stopped" log line:\n${tail}`,
    );
  });
});
