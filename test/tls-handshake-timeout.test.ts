// A client that opens a connection and never sends a request is disconnected: on the HTTPS
// listener after limits.handshakeTimeout if it never starts TLS, or after limits.headersTimeout
// if it finishes the handshake and then sends nothing; on the plain-HTTP status listener after
// limits.headersTimeout. Node's defaults held the first for 120 s and the others for good.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { connect as connectTcp, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect as connectTls } from 'node:tls';
import { shortleafOk, tempDir } from './helpers/cli.js';
import { startServer, type RunningServer } from './helpers/server.js';

const HANDSHAKE_TIMEOUT_MS = 1_000;
const HEADERS_TIMEOUT_MS = 2_000;
const GIVE_UP_MS = 15_000;

/** How long after `ready` the server closed the socket; -1 if it still had not after GIVE_UP_MS. */
async function closedAfter(socket: Socket, ready: string, send = ''): Promise<number> {
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => socket.once(ready, resolve).once('error', reject));
  const started = Date.now();
  if (send !== '') socket.write(send);
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - started)));
  const took = await Promise.race([
    closed,
    new Promise<number>((resolve) => setTimeout(() => resolve(-1), GIVE_UP_MS).unref()),
  ]);
  socket.destroy();
  return took;
}

const within = (tookMs: number, limitMs: number) => {
  assert.ok(tookMs > 0, `the server held a silent connection open for ${GIVE_UP_MS / 1000} s`);
  assert.ok(tookMs >= limitMs - 100 && tookMs < limitMs + 2_000, `closed after ${tookMs} ms (limit ${limitMs} ms)`);
};

describe('connections that never send a request', () => {
  const dir = tempDir();
  let server: RunningServer | undefined;
  before(async () => {
    const data = dir.file('data');
    await shortleafOk(['init', '--data', data]);
    writeFileSync(
      dir.file('config.json'),
      JSON.stringify({ limits: { handshakeTimeout: '1s', headersTimeout: '2s', requestTimeout: '3s' } }),
    );
    server = await startServer({ data, args: ['--config', dir.file('config.json')] });
  });
  after(async () => {
    try {
      await server?.stop();
    } finally {
      dir.remove();
    }
  });

  it('HTTPS: closes a TCP connection that never starts TLS within limits.handshakeTimeout', async () => {
    within(
      await closedAfter(connectTcp({ host: '127.0.0.1', port: server!.apiPort }), 'connect'),
      HANDSHAKE_TIMEOUT_MS,
    );
  });

  it('HTTPS: closes a connection that finishes the handshake and sends nothing within limits.headersTimeout', async () => {
    within(
      await closedAfter(
        connectTls({ host: '127.0.0.1', port: server!.apiPort, rejectUnauthorized: false }),
        'secureConnect',
      ),
      HEADERS_TIMEOUT_MS,
    );
  });

  it('status listener: closes a connection that sends nothing, or one byte, within limits.headersTimeout', async () => {
    within(
      await closedAfter(connectTcp({ host: '127.0.0.1', port: server!.statusPort }), 'connect'),
      HEADERS_TIMEOUT_MS,
    );
    within(
      await closedAfter(connectTcp({ host: '127.0.0.1', port: server!.statusPort }), 'connect', 'G'),
      HEADERS_TIMEOUT_MS,
    );
  });

  it('still serves a request that arrives in time, and keeps that connection for the next one', async () => {
    const socket = connectTcp({ host: '127.0.0.1', port: server!.statusPort });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString()));
    const ask = async () => {
      text = '';
      socket.write('GET /health HTTP/1.1\r\nHost: status\r\n\r\n');
      const deadline = Date.now() + 5_000;
      while (!text.includes('"ok"') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.match(text, /^HTTP\/1\.1 200/);
    };
    await ask();
    // Past the first-request bound, a kept-alive connection is Node's keepAliveTimeout's business (5 s).
    await new Promise((r) => setTimeout(r, HEADERS_TIMEOUT_MS + 500));
    await ask();
    socket.destroy();
  });
});
