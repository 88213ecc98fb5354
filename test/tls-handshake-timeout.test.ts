// A client that opens a TCP connection to the HTTPS listener and never starts TLS is disconnected
// once limits.handshakeTimeout has passed, instead of being held for Node's default 120 s.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import { shortleafOk, tempDir } from './helpers/cli.js';
import { startServer, type RunningServer } from './helpers/server.js';

const HANDSHAKE_TIMEOUT_MS = 1_000;
const GIVE_UP_MS = 15_000;

describe('TLS handshake timeout', () => {
  const dir = tempDir();
  let server: RunningServer | undefined;
  after(async () => {
    try {
      await server?.stop();
    } finally {
      dir.remove();
    }
  });

  it('closes a connection that sends nothing within limits.handshakeTimeout', async () => {
    const data = dir.file('data');
    await shortleafOk(['init', '--data', data]);
    writeFileSync(dir.file('config.json'), JSON.stringify({ limits: { handshakeTimeout: '1s' } }));
    server = await startServer({ data, args: ['--config', dir.file('config.json')] });
    const socket = connect({ host: '127.0.0.1', port: server.apiPort });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const started = Date.now();
    socket.on('error', () => undefined);
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - started)));
    const tookMs = await Promise.race([closed, new Promise<number>((resolve) => setTimeout(() => resolve(-1), GIVE_UP_MS).unref())]);
    socket.destroy();
    assert.ok(tookMs > 0, `the server held a silent connection open for ${GIVE_UP_MS / 1000} s`);
    assert.ok(tookMs >= HANDSHAKE_TIMEOUT_MS - 100 && tookMs < HANDSHAKE_TIMEOUT_MS + 2_000, `closed after ${tookMs} ms`);
  });
});
