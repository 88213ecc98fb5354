import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SignJWT, importJWK, type JWK } from 'jose';
import { generateKeyPair } from '@shortleaf/pki';
import { isProgrammingError, mutate, mutationsArb } from '@shortleaf/pki/test-mutations';
import { AuthorityError } from './errors.js';
import { createTokenVerifier } from './token.js';
import { AUD, T0 } from './test-fixtures.js';

const RUNS = 10_000;
// Generous so a loaded CI machine does not fail it; a hang or a quadratic blow-up still does.
const SLOW_MS = 1_000;

const { privateKey, publicKey } = generateKeyPair('EC-P256');
const publicJwk = JSON.stringify(publicKey.export({ format: 'jwk' }));
const signingKey = await importJWK(privateKey.export({ format: 'jwk' }) as JWK, 'ES256');
const verifier = createTokenVerifier({ publicJwk: async (name) => (name === 'ops' ? publicJwk : null), now: () => T0 });
const nowS = Math.floor(T0.getTime() / 1000);
const claims = (): Record<string, unknown> => ({
  sans: ['api.internal', '10.0.0.1'],
  iss: 'ops',
  aud: AUD,
  sub: 'api.internal',
  iat: nowS,
  nbf: nowS,
  exp: nowS + 300,
  jti: randomUUID(),
});
const sign = (payload: Record<string, unknown>) =>
  new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'JWT' }).sign(signingKey);
const valid = await sign(claims());

/** Verifies, and fails the property on anything but an AuthorityError (a wrapped TypeError included) or a slow answer. */
async function onlyAuthorityErrors(token: unknown): Promise<void> {
  const started = performance.now();
  try {
    await verifier.verifyToken(token, [AUD]);
  } catch (err) {
    assert.ok(err instanceof AuthorityError, `verifyToken threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
    assert.ok(!isProgrammingError(err), `verifyToken wrapped a programming error: ${String((err as Error).cause)}`);
  }
  const took = performance.now() - started;
  assert.ok(took < SLOW_MS, `verifyToken took ${took.toFixed(1)} ms`);
}

const ascii = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => Buffer.from(b).toString('latin1');

/** A claim value as an attacker might send it: the right type or any JSON at all. */
const anyJson = fc.jsonValue({ maxDepth: 3 });

describe('the token verifier on hostile input (property)', () => {
  it('accepts the valid token the mutations start from', async () => {
    assert.equal((await verifier.verifyToken(valid, [AUD])).provisioner, 'ops');
  });

  it(`throws only AuthorityError, quickly, for ${RUNS} mutated tokens`, async () => {
    const [header, payload, signature] = valid.split('.') as [string, string, string];
    const segment = (b64: string, m: Parameters<typeof mutate>[1]) =>
      Buffer.from(mutate(Buffer.from(b64, 'base64url'), m)).toString('base64url');
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          // the compact serialization itself
          fc.tuple(fc.constant(valid), mutationsArb).map(([t, m]) => text(mutate(ascii(t), m))),
          // the decoded JSON of the header or the payload, re-encoded (the signature then fails, after decoding)
          mutationsArb.map((m) => `${segment(header, m)}.${payload}.${signature}`),
          mutationsArb.map((m) => `${header}.${segment(payload, m)}.${signature}`),
          // not a string at all, or any string
          anyJson,
          fc.string({ maxLength: 300 }),
        ),
        onlyAuthorityErrors,
      ),
      { numRuns: RUNS },
    );
  });

  it(`throws only AuthorityError, quickly, for ${RUNS} correctly signed tokens with hostile claims`, async () => {
    const keys = Object.keys(claims());
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(fc.constantFrom(...keys), anyJson, { maxKeys: 4 }),
        fc.subarray(keys, { maxLength: 2 }),
        fc.option(
          fc.array(
            fc.oneof(
              fc.string({ maxLength: 70 }),
              fc.constantFrom('*.x.internal', '::1', '0.0.0.0/0', 'a..b', 'xn--', '.', ''),
            ),
            { maxLength: 120 },
          ),
        ),
        async (changed, removed, sans) => {
          const payload: Record<string, unknown> = { ...claims(), ...changed, ...(sans === null ? {} : { sans }) };
          for (const k of removed) delete payload[k];
          await onlyAuthorityErrors(await sign(payload));
        },
      ),
      { numRuns: RUNS },
    );
  });
});
