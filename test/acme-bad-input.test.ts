// Hostile and malformed requests to the ACME front door of a running server: each gets a 4xx
// problem document with an ACME error type, a Replay-Nonce and the directory link, never a 500,
// and leaves every table of the database as it was.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { shortleafOk, tempDir } from './helpers/cli.js';
import { tableCounts } from './helpers/data.js';
import { request, type HttpResult } from './helpers/http.js';
import { startServer, type RunningServer } from './helpers/server.js';

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

describe('ACME: bad input against shortleaf serve', () => {
  const dir = tempDir();
  const data = dir.file('data');
  let server: RunningServer | undefined;
  let ca = '';
  const base = () => `${server!.publicUrl}/acme/acme`;

  before(async () => {
    await shortleafOk(['init', '--data', data]);
    ca = readFileSync(join(data, 'offline-root', 'root.crt'), 'utf8');
    server = await startServer({ data });
  });

  after(async () => {
    try {
      await server?.stop();
    } finally {
      dir.remove();
    }
  });

  async function nonce(): Promise<string> {
    const res = await request(`${base()}/new-nonce`, { method: 'HEAD', ca });
    assert.equal(res.status, 200);
    return res.headers?.['replay-nonce']!;
  }

  function assertAcmeProblem(res: HttpResult, status: number, type: string, detail?: RegExp): void {
    const where = `HTTP ${res.status} ${res.contentType}: ${res.text.slice(0, 300)}`;
    assert.equal(res.status, status, where);
    assert.match(res.contentType, /^application\/problem\+json\b/, where);
    const p = res.json<{ type: string; detail: string; status: number }>();
    assert.equal(p.type, `urn:ietf:params:acme:error:${type}`, where);
    assert.equal(p.status, status, where);
    assert.ok(p.detail.length >= 10, `a readable detail: ${where}`);
    if (detail !== undefined) assert.match(p.detail, detail, where);
    assert.match(
      res.headers?.['replay-nonce'] ?? '',
      /^[A-Za-z0-9_-]{16,}$/,
      `Replay-Nonce on every response: ${where}`,
    );
  }

  const post = (path: string, body: string | Buffer, opts: { contentType?: string; chunked?: boolean } = {}) =>
    request(`${base()}${path}`, {
      method: 'POST',
      ca,
      body,
      chunked: opts.chunked ?? false,
      headers: { 'content-type': opts.contentType ?? 'application/jose+json' },
    });

  it('refuses each malformed request with its ACME type and writes nothing', async () => {
    const before = await tableCounts(data);
    const jws = (protectedHeader: unknown, payload = '', signature = 'AAAA') =>
      JSON.stringify({
        protected: typeof protectedHeader === 'string' ? protectedHeader : b64(protectedHeader),
        payload,
        signature,
      });
    const url = `${base()}/new-account`;
    const cases: Array<[string, () => Promise<HttpResult>, number, string, RegExp?]> = [
      [
        'wrong content type',
        () => post('/new-account', '{}', { contentType: 'application/json' }),
        415,
        'malformed',
        /jose\+json/,
      ],
      ['not JSON', () => post('/new-account', 'not json'), 400, 'malformed', /not valid JSON/],
      ['a JSON array', () => post('/new-account', '[]'), 400, 'malformed'],
      [
        'an unprotected header',
        () => post('/new-account', JSON.stringify({ protected: b64({}), header: {}, payload: '', signature: '' })),
        400,
        'malformed',
        /unprotected/,
      ],
      [
        'the general JWS serialization',
        () => post('/new-account', JSON.stringify({ payload: '', signatures: [] })),
        400,
        'malformed',
      ],
      ['padded base64', () => post('/new-account', jws('e30=')), 400, 'malformed', /base64url/],
      ['a protected header that is not JSON', () => post('/new-account', jws(b64('{nope'))), 400, 'malformed'],
      ['no nonce', () => post('/new-account', jws({ alg: 'ES256', url, jwk: {} })), 400, 'badNonce'],
      [
        'a nonce never issued',
        () => post('/new-account', jws({ alg: 'ES256', url, jwk: {}, nonce: 'AAAAAAAAAAAAAAAAAAAAAA' })),
        400,
        'badNonce',
      ],
      [
        'alg none',
        async () => post('/new-account', jws({ alg: 'none', url, jwk: {}, nonce: await nonce() })),
        400,
        'badSignatureAlgorithm',
      ],
      [
        'a private key as jwk',
        async () =>
          post(
            '/new-account',
            jws({
              alg: 'ES256',
              url,
              nonce: await nonce(),
              jwk: { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA', d: 'AA' },
            }),
          ),
        400,
        'badPublicKey',
      ],
      [
        'an unusable jwk',
        async () =>
          post(
            '/new-account',
            jws({ alg: 'ES256', url, nonce: await nonce(), jwk: { kty: 'EC', crv: 'P-256', x: 'AA', y: 'AA' } }),
          ),
        400,
        'badPublicKey',
      ],
      [
        'both jwk and kid',
        async () => post('/new-account', jws({ alg: 'ES256', url, nonce: await nonce(), jwk: {}, kid: 'x' })),
        400,
        'malformed',
        /exactly one/,
      ],
      [
        'a url for another resource',
        async () =>
          post('/new-account', jws({ alg: 'ES256', url: `${base()}/new-order`, nonce: await nonce(), jwk: {} })),
        403,
        'unauthorized',
        /url/,
      ],
      [
        'a kid for no account',
        async () =>
          post(
            '/new-order',
            jws({ alg: 'ES256', url: `${base()}/new-order`, nonce: await nonce(), kid: `${base()}/account/nobody` }),
          ),
        400,
        'accountDoesNotExist',
      ],
      [
        'a body over the limit, announced',
        () => post('/new-account', Buffer.alloc(200_000, 0x61)),
        400,
        'malformed',
        /larger than/,
      ],
      [
        'a body over the limit, chunked',
        () => post('/new-account', Buffer.alloc(200_000, 0x61), { chunked: true }),
        400,
        'malformed',
        /larger than/,
      ],
      ['GET on a POST-as-GET resource', () => request(`${base()}/order/abc`, { ca }), 405, 'malformed', /POST-as-GET/],
      ['an unknown resource', () => post('/no-such-thing/x', '{}'), 404, 'malformed', /no ACME resource/],
      [
        'an unknown provisioner',
        () => request(`${server!.publicUrl}/acme/nope/directory`, { ca }),
        404,
        'malformed',
        /no ACME provisioner/,
      ],
      [
        'a JWK provisioner is not an ACME one',
        () => request(`${server!.publicUrl}/acme/admin/directory`, { ca }),
        404,
        'malformed',
      ],
      [
        'a garbage ARI certificate id',
        () => request(`${base()}/renewal-info/not-a-cert-id`, { ca }),
        400,
        'malformed',
        /certificate identifier/,
      ],
      [
        'an ARI id for no certificate',
        () => request(`${base()}/renewal-info/${b64('aki')}.${b64('serial')}`, { ca }),
        404,
        'malformed',
      ],
    ];
    for (const [name, send, status, type, detail] of cases) {
      await it(name, async () => assertAcmeProblem(await send(), status, type, detail));
    }
    assert.deepEqual(await tableCounts(data), before, 'no refused request wrote anything');
  });

  it('answers newNonce with 200 to HEAD and 204 to GET, uncached, and keeps the connection', async () => {
    const head = await request(`${base()}/new-nonce`, { method: 'HEAD', ca });
    assert.equal(head.status, 200);
    assert.equal(head.headers?.['content-length'], '0');
    assert.equal(head.headers?.['cache-control'], 'no-store');
    assert.match(head.headers?.link ?? '', /\/acme\/acme\/directory>;rel="index"/);
    const get = await request(`${base()}/new-nonce`, { ca });
    assert.equal(get.status, 204);
    assert.notEqual(get.headers?.['replay-nonce'], head.headers?.['replay-nonce']);
  });
});
