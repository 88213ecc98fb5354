// Replays refused across a restart: a spent one-time token stays spent (token_uses is in the
// database), and an ACME nonce issued before the restart is refused after it (nonces live in
// memory, so a restart forgets them all and clients retry with a fresh one).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createCsr, csrToPem, generateKeyPair } from '@shortleaf/pki';
import { shortleafOk, tempDir } from './helpers/cli.js';
import { request } from './helpers/http.js';
import { startServer, type RunningServer } from './helpers/server.js';
import { jose, mintToken } from './helpers/workspace.js';

describe('replays across a restart', () => {
  const dir = tempDir();
  const data = dir.file('data');
  let server: RunningServer | undefined;
  let ca = '';
  let adminJwk: Record<string, string> = {};

  before(async () => {
    await shortleafOk(['init', '--data', data]);
    ca = readFileSync(join(data, 'offline-root', 'root.crt'), 'utf8');
    const { provisioner: _, ...jwk } = JSON.parse(
      readFileSync(join(data, 'provisioners', 'admin.jwk'), 'utf8'),
    ) as Record<string, string>;
    adminJwk = jwk;
    server = await startServer({ data });
  });

  after(async () => {
    try {
      await server?.stop();
    } finally {
      dir.remove();
    }
  });

  async function restart(): Promise<void> {
    const { apiPort, statusPort } = server!;
    await server!.stop();
    server = await startServer({
      data,
      noListenFlags: true,
      args: ['--listen', `127.0.0.1:${apiPort}`, '--status-listen', `127.0.0.1:${statusPort}`],
    });
  }

  it('refuses a spent token, and a pre-restart ACME nonce, after the server restarted', async () => {
    const csr = csrToPem(createCsr(generateKeyPair('EC-P256').privateKey, { commonName: null }, []));
    const token = await mintToken({
      provisioner: 'admin',
      privateJwk: adminJwk,
      caUrl: server!.publicUrl,
      subject: 'replay.test',
      sans: ['replay.test'],
    });
    const sign = () =>
      request(`${server!.publicUrl}/api/v1/sign`, {
        method: 'POST',
        ca,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ csr, token }),
      });
    assert.equal((await sign()).status, 201);
    const nonceReply = await request(`${server!.publicUrl}/acme/acme/new-nonce`, { method: 'HEAD', ca });
    const nonce = nonceReply.headers?.['replay-nonce'];
    assert.ok(nonce);

    await restart();

    const replayed = await sign();
    assert.equal(replayed.status, 401, replayed.text);
    assert.equal(replayed.json<{ type: string }>().type, 'urn:shortleaf:problem:tokenReplayed');

    const url = `${server!.publicUrl}/acme/acme/new-account`;
    const { privateKey: accountKey, publicKey } = await jose.generateKeyPair('ES256');
    const body = await new jose.FlattenedSign(new TextEncoder().encode('{"termsOfServiceAgreed":true}'))
      .setProtectedHeader({ alg: 'ES256', nonce, url, jwk: await jose.exportJWK(publicKey) })
      .sign(accountKey);
    const stale = await request(url, {
      method: 'POST',
      ca,
      headers: { 'content-type': 'application/jose+json' },
      body: JSON.stringify(body),
    });
    assert.equal(stale.status, 400, stale.text);
    assert.equal(stale.json<{ type: string }>().type, 'urn:ietf:params:acme:error:badNonce');
    assert.match(stale.headers?.['replay-nonce'] ?? '', /^[A-Za-z0-9_-]{16,}$/, 'a fresh nonce to retry with');
  });
});
