// A slow client (slowloris: request headers sent byte by byte) is disconnected by the server once
// limits.headersTimeout has passed, on the HTTPS API listener.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { after, describe, it } from 'node:test';
import { shortleafOk, tempDir } from './helpers/cli.js';
import { startServer, type RunningServer } from './helpers/server.js';

const HEADERS_TIMEOUT_MS = 1_000;

describe('slow clients', () => {
  const dir = tempDir();
  let server: RunningServer | undefined;
  after(async () => {
    try {
      await server?.stop();
    } finally {
      dir.remove();
    }
  });

  it('closes a TLS connection whose headers trickle in slower than limits.headersTimeout', async () => {
    const data = dir.file('data');
    await shortleafOk(['init', '--data', data]);
    writeFileSync(dir.file('config.json'), JSON.stringify({ limits: { headersTimeout: '1s', requestTimeout: '2s' } }));
    server = await startServer({ data, args: ['--config', dir.file('config.json')] });
    const socket = connect({ host: '127.0.0.1', port: server.apiPort, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    const started = Date.now();
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - started)));
    socket.on('error', () => undefined);
    const header =
      'POST /api/v1/sign HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nX-Slow: ' + 'a'.repeat(1_000);
    let i = 0;
    const drip = setInterval(() => {
      if (!socket.destroyed && i < header.length) socket.write(header[i++]!);
    }, 100);
    const tookMs = await Promise.race([
      closed,
      new Promise<number>((resolve) => setTimeout(() => resolve(-1), 15_000)),
    ]);
    clearInterval(drip);
    socket.destroy();
    assert.ok(tookMs > 0, 'the server kept the slow connection open for 15 s');
    // headersTimeout, plus at most one connection check (1 s) and some slack.
    assert.ok(tookMs >= HEADERS_TIMEOUT_MS - 100 && tookMs < HEADERS_TIMEOUT_MS + 2_500, `closed after ${tookMs} ms`);
    assert.ok(i < header.length, 'the headers were never complete');
  });
});
