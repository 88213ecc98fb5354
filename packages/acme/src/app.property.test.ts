import assert from 'node:assert/strict';
import { KeyObject, sign as nodeSign } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { mutate, mutationsArb } from '@shortleaf/pki/test-mutations';
import { ACME_ERROR_PREFIX } from './errors.js';
import { b64url, createAcmeHarness, makeCsr, signRaw, type AcmeClient, type AcmeHarness } from './test-fixtures.js';

const RUNS = 10_000;

let harness: AcmeHarness;
let client: AcmeClient;
/** The next nonce to sign with: every response's Replay-Nonce, so each request can reach past the nonce check. */
let nonce: string;
/** Valid (url, payload) pairs for every signed resource; the mutations start from these. */
let targets: Array<{ url: string; payload: unknown; jwk?: boolean }>;
const statuses = new Map<number, number>();

before(async () => {
  harness = await createAcmeHarness();
  client = await harness.account();
  const { url: orderUrl, order } = await client.readyOrder(['svc1.test']);
  const pending = await client.newOrder(['svc2.test']);
  const authz = (await client.get<{ challenges: Array<{ url: string }> }>(pending.body.authorizations[0]!)).body;
  const issued = await client.issue(['svc3.test']);
  const u = (path: string) => client.url(path);
  targets = [
    { url: u('new-account'), payload: { termsOfServiceAgreed: true, contact: ['mailto:ops@example.com'] }, jwk: true },
    { url: u('new-account'), payload: { onlyReturnExisting: true }, jwk: true },
    { url: client.kid!, payload: { contact: ['mailto:other@example.com'] } },
    { url: `${client.kid!}/orders`, payload: '' },
    {
      url: u('new-order'),
      payload: {
        identifiers: [
          { type: 'dns', value: 'svc4.test' },
          { type: 'ip', value: '10.0.0.1' },
        ],
        notAfter: '2031-03-02T12:00:00Z',
      },
    },
    { url: orderUrl, payload: '' },
    { url: order.finalize, payload: { csr: b64url(makeCsr(['svc1.test']).der) } },
    { url: pending.body.authorizations[0]!, payload: '' },
    { url: authz.challenges[0]!.url, payload: {} },
    { url: issued.order.certificate!, payload: '' },
    { url: u('revoke-cert'), payload: { certificate: b64url(issued.certificate.der), reason: 4 } },
    { url: u('key-change'), payload: { account: client.kid, oldKey: client.key.publicJwk } },
  ];
  nonce = await client.nonce();
});
after(async () => {
  await harness.close();
  console.log('statuses', Object.fromEntries([...statuses].sort()));
});

/** Sends a body to `url` and checks the answer: never 5xx, and every refusal an ACME problem document. */
async function send(url: string, body: Uint8Array | string, contentType = 'application/jose+json'): Promise<void> {
  const res = await harness.app.request(url, { method: 'POST', headers: { 'content-type': contentType }, body });
  nonce = res.headers.get('replay-nonce') ?? nonce;
  const text = await res.text();
  statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  assert.ok(res.status < 500, `${url} answered ${res.status}: ${text}`);
  if (res.status >= 400) {
    assert.equal(res.headers.get('content-type'), 'application/problem+json', text);
    const problem = JSON.parse(text) as { type?: unknown; status?: unknown };
    assert.ok(typeof problem.type === 'string' && problem.type.startsWith(ACME_ERROR_PREFIX), text);
    assert.equal(problem.status, res.status);
  }
}

/** A correctly signed request: the account's key with `kid`, or its `jwk` where RFC 8555 asks for one. */
function signed(
  target: { url: string; jwk?: boolean },
  payload: unknown,
  header: Record<string, unknown> = {},
): string {
  const base = {
    alg: 'ES256',
    nonce,
    url: target.url,
    ...(target.jwk === true ? { jwk: client.key.publicJwk } : { kid: client.kid }),
  };
  return signRaw({ ...base, ...header }, payload, client.key);
}

const anyJson = fc.jsonValue({ maxDepth: 4 });

describe('the ACME app on hostile input (property)', () => {
  it(`answers ${RUNS} byte-mutated signed requests with ACME problems, never 5xx`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), mutationsArb, async (which, mutations) => {
        const target = targets[which % targets.length]!;
        const body = new TextEncoder().encode(signed(target, target.payload));
        await send(target.url, mutate(body, mutations));
      }),
      { numRuns: RUNS },
    );
  });

  it(`answers ${RUNS} correctly signed requests with hostile payloads and headers, never 5xx`, async () => {
    const field = fc.constantFrom('alg', 'nonce', 'url', 'kid', 'jwk', 'crit', 'b64', 'typ');
    await fc.assert(
      fc.asyncProperty(
        fc.nat(),
        fc.oneof(
          // the valid payload's JSON, byte-mutated (often no longer JSON, or a different shape)
          fc.tuple(fc.constant(null), mutationsArb),
          // any JSON at all
          anyJson.map((v) => [v, null] as const),
          // the valid payload with one member replaced by any JSON
          fc.tuple(fc.string({ maxLength: 12 }), anyJson).map(([k, v]) => [{ [k]: v }, 'merge'] as const),
        ),
        fc.option(fc.dictionary(field, anyJson, { maxKeys: 2 }), { freq: 4 }),
        async (which, [value, how], header) => {
          const target = targets[which % targets.length]!;
          let payload: unknown;
          if (how === 'merge')
            payload = { ...(typeof target.payload === 'object' ? target.payload : {}), ...(value as object) };
          else if (Array.isArray(how)) {
            const json = new TextEncoder().encode(JSON.stringify(target.payload === '' ? {} : target.payload));
            const bytes = mutate(json, how);
            // signRaw JSON-encodes its payload; send the mutated bytes as they are instead.
            const prot = b64url(
              Buffer.from(
                JSON.stringify({
                  alg: 'ES256',
                  nonce,
                  url: target.url,
                  ...(target.jwk === true ? { jwk: client.key.publicJwk } : { kid: client.kid }),
                }),
              ),
            );
            return send(target.url, signEncoded(prot, b64url(bytes)));
          } else payload = value;
          await send(target.url, signed(target, payload, header ?? {}));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('answers a body that is not a JWS, or the wrong media type, with ACME problems', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat(),
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          anyJson.map((v) => new TextEncoder().encode(JSON.stringify(v))),
        ),
        fc.constantFrom('application/jose+json', 'application/json', 'text/plain'),
        async (which, body, type) => {
          await send(targets[which % targets.length]!.url, body, type);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});

/** A flattened JWS over an already encoded protected header and payload, signed with the account key. */
function signEncoded(prot: string, payload: string): string {
  const key =
    client.key.privateKey instanceof KeyObject ? client.key.privateKey : KeyObject.from(client.key.privateKey);
  const signature = nodeSign('sha256', Buffer.from(`${prot}.${payload}`), { key, dsaEncoding: 'ieee-p1363' }).toString(
    'base64url',
  );
  return JSON.stringify({ protected: prot, payload, signature });
}
