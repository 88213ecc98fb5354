// The HTTP cache lifetime of OCSP GET answers (RFC 5019 §6.2): how long a cache between a
// relying party and us may keep serving an answer, and so how late a revocation can reach it.
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import type { OcspAnswer } from '@shortleaf/authority';
import { createOcspHttpHandler } from './ocsp-http.js';

const NOW = new Date('2031-03-01T12:00:00.000Z');
const HOUR = 3_600_000;
// Any base64 will do: the stub responder below answers every request with the same signed bytes.
const PATH = '/ocsp/MEQwQjBAMD4wPDAJBgUrDgMCGgUABBQBAQ';

const servers: Server[] = [];
after(() => Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))));

/** A status listener whose responder answers every request with one pre-signed answer valid until `nextUpdate`. */
async function listener(opts: { maxAgeSeconds?: number; nextUpdate: Date }): Promise<number> {
  const answer: OcspAnswer = {
    body: Uint8Array.of(0x30, 0x03, 0x0a, 0x01, 0x00),
    outcome: 'good',
    cache: { thisUpdate: NOW, nextUpdate: opts.nextUpdate, etag: '"e1"' },
    hit: true,
  };
  const handle = createOcspHttpHandler({
    ocsp: async () => answer,
    now: () => NOW,
    ...(opts.maxAgeSeconds === undefined ? {} : { maxAgeSeconds: opts.maxAgeSeconds }),
    onError: (event) => assert.fail(event),
  });
  const server = createServer((req, res) => void (handle(req, res) || res.writeHead(404).end()));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function get(
  port: number,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: PATH, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('OCSP GET cache headers', () => {
  it('with maxAgeSeconds 0 a cache must ask again before reusing an answer: max-age=0, Expires now', async () => {
    const port = await listener({ maxAgeSeconds: 0, nextUpdate: new Date(NOW.getTime() + 4 * HOUR) });
    const res = await get(port);
    assert.equal(res.status, 200);
    assert.equal(res.headers['cache-control'], 'max-age=0, public, no-transform, must-revalidate');
    assert.equal(res.headers.expires, NOW.toUTCString());
    assert.equal(res.headers.etag, '"e1"');
    assert.equal(
      (await get(port, { 'if-none-match': '"e1"' })).status,
      304,
      'revalidating an unchanged answer costs a 304',
    );
  });

  it('a configured max-age bounds how long a cache serves the answer, and Expires says the same', async () => {
    const port = await listener({ maxAgeSeconds: 300, nextUpdate: new Date(NOW.getTime() + 4 * HOUR) });
    const res = await get(port);
    assert.equal(res.headers['cache-control'], 'max-age=300, public, no-transform, must-revalidate');
    assert.equal(res.headers.expires, new Date(NOW.getTime() + 300_000).toUTCString());
  });

  it('never past nextUpdate: an answer about to lapse gets what is left of it', async () => {
    const nextUpdate = new Date(NOW.getTime() + 120_000);
    const res = await get(await listener({ maxAgeSeconds: 300, nextUpdate }));
    assert.equal(res.headers['cache-control'], 'max-age=120, public, no-transform, must-revalidate');
    assert.equal(res.headers.expires, nextUpdate.toUTCString());
  });
});
