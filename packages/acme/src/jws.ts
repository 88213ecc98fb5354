import { createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { checkRsaPublicKey, PkiError, rsaParameters } from '@shortleaf/pki';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { AcmeError } from './errors.js';

/** Account-key algorithms we verify (RFC 8555 §6.2 requires ES256 and allows the others). */
export const JWS_ALGORITHMS = ['ES256', 'ES384', 'RS256', 'EdDSA'] as const;
export type JwsAlgorithm = (typeof JWS_ALGORITHMS)[number];

/**
 * One row per algorithm (RFC 7518 §3): the key it needs, so a key cannot be used under another's
 * name, and how node:crypto verifies it. ECDSA signatures are the fixed-length r‖s of RFC 7518
 * §3.4, never DER.
 */
const ALGORITHMS: Record<JwsAlgorithm, { key: (jwk: JWK) => boolean; hash: string | null; signatureBytes?: number }> = {
  ES256: { key: (k) => k.kty === 'EC' && k.crv === 'P-256', hash: 'sha256', signatureBytes: 64 },
  ES384: { key: (k) => k.kty === 'EC' && k.crv === 'P-384', hash: 'sha384', signatureBytes: 96 },
  RS256: { key: (k) => k.kty === 'RSA', hash: 'sha256' },
  EdDSA: { key: (k) => k.kty === 'OKP' && k.crv === 'Ed25519', hash: null, signatureBytes: 64 },
};

/** True when `jwk` is a key of the type and curve `alg` names (RFC 7518 §3.1); says nothing of its size. */
export const keyFitsAlgorithm = (jwk: JWK, alg: JwsAlgorithm): boolean => ALGORITHMS[alg].key(jwk);

/**
 * RSA account keys get the bounds CSR keys get (2048 to 8192 bits, public exponent 65537), read
 * from the JWK's octets without importing it: a huge exponent makes each verification cost
 * milliseconds, and this runs before any signature is checked.
 */
function checkRsaJwk(jwk: Record<string, unknown>): void {
  const { n, e } = jwk;
  if (typeof n !== 'string' || typeof e !== 'string' || !B64URL.test(n) || !B64URL.test(e))
    throw new AcmeError('badPublicKey', 'an RSA "jwk" needs base64url "n" and "e" (RFC 7518 §6.3.1)');
  const { modulusBits, publicExponent } = rsaParameters(Buffer.from(n, 'base64url'), Buffer.from(e, 'base64url'));
  try {
    checkRsaPublicKey(modulusBits, publicExponent);
  } catch (cause) {
    if (cause instanceof PkiError)
      throw new AcmeError('badPublicKey', `the account key is refused: ${cause.message}`, { cause });
    throw cause;
  }
}

const B64URL = /^[A-Za-z0-9_-]*$/;

export interface ProtectedHeader {
  alg: JwsAlgorithm;
  nonce?: string;
  url: string;
  jwk?: JWK;
  kid?: string;
}

/** A request body as a flattened JWS (RFC 7515 §7.2.2), with its protected header decoded. */
export interface ParsedJws {
  input: { protected: string; payload: string; signature: string };
  header: ProtectedHeader;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses a flattened JWS. RFC 8555 §6.2: exactly one signature, no unprotected header, and the
 * protected header is where everything lives.
 */
export function parseJws(value: unknown, what = 'the request body'): ParsedJws {
  if (!isRecord(value)) throw new AcmeError('malformed', `${what} must be a flattened JWS object`);
  for (const key of Object.keys(value)) {
    if (key === 'header')
      throw new AcmeError('malformed', `${what} has an unprotected header; put every header field in "protected"`);
    if (key !== 'protected' && key !== 'payload' && key !== 'signature')
      throw new AcmeError(
        'malformed',
        `${what} has an unexpected field "${key}" (only the flattened JWS serialization is accepted)`,
      );
  }
  const { protected: prot, payload, signature } = value;
  if (typeof prot !== 'string' || typeof payload !== 'string' || typeof signature !== 'string') {
    throw new AcmeError('malformed', `${what} needs string "protected", "payload" and "signature" fields`);
  }
  if (!B64URL.test(prot) || !B64URL.test(payload) || !B64URL.test(signature))
    throw new AcmeError('malformed', `the fields of ${what} must be unpadded base64url`);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(prot, 'base64url').toString('utf8'));
  } catch {
    throw new AcmeError('malformed', `the protected header of ${what} is not base64url-encoded JSON`);
  }
  if (!isRecord(header)) throw new AcmeError('malformed', `the protected header of ${what} must be a JSON object`);
  return { input: { protected: prot, payload, signature }, header: header as unknown as ProtectedHeader };
}

/**
 * Checks the protected header of a request (RFC 8555 §6.2, §6.4): a supported asymmetric `alg`,
 * a `url` equal to the URL the request was sent to, and exactly one of `jwk` (only where `keyMode`
 * allows it: newAccount and revokeCert) or `kid`. The nonce is checked by the caller, first.
 */
export function checkHeader(
  header: ProtectedHeader,
  opts: { requestUrl: string; keyMode: 'jwk' | 'kid' | 'either' },
): void {
  const raw = header as unknown as Record<string, unknown>;
  if (typeof raw.alg !== 'string' || !(JWS_ALGORITHMS as readonly string[]).includes(raw.alg)) {
    // RFC 8555 §6.2: the problem MUST carry the accepted algorithms as an "algorithms" array.
    throw new AcmeError(
      'badSignatureAlgorithm',
      `the JWS algorithm ${JSON.stringify(raw.alg)} is not supported (use one of ${JWS_ALGORITHMS.join(', ')})`,
      { algorithms: JWS_ALGORITHMS },
    );
  }
  // RFC 7515 §4.1.11: an extension the server must understand; we understand none.
  if (raw.crit !== undefined)
    throw new AcmeError(
      'malformed',
      'the protected header lists critical extensions ("crit"), and this server supports none',
    );
  if (typeof raw.url !== 'string') throw new AcmeError('malformed', 'the protected header must carry a "url"');
  // RFC 8555 §6.4: the url names the resource the client meant; a mismatch is refused outright.
  if (raw.url !== opts.requestUrl)
    throw new AcmeError(
      'unauthorized',
      `the protected header's url ${JSON.stringify(raw.url)} does not match the request URL ${opts.requestUrl}`,
    );
  const hasJwk = raw.jwk !== undefined;
  const hasKid = raw.kid !== undefined;
  if (hasJwk === hasKid)
    throw new AcmeError('malformed', 'the protected header must have exactly one of "jwk" and "kid"');
  if (hasJwk && opts.keyMode === 'kid')
    throw new AcmeError(
      'malformed',
      'this request must be signed by an account key named with "kid", not an embedded "jwk"',
    );
  if (hasKid && opts.keyMode === 'jwk')
    throw new AcmeError('malformed', 'this request must carry the new account key as "jwk", not "kid"');
  if (hasKid && typeof raw.kid !== 'string') throw new AcmeError('malformed', '"kid" must be an account URL');
  if (hasJwk) checkPublicJwk(raw.jwk, header.alg);
}

/** A public key usable with `alg`: no private members, the right type and curve, RSA within bounds. */
export function checkPublicJwk(jwk: unknown, alg: JwsAlgorithm): asserts jwk is JWK {
  if (!isRecord(jwk)) throw new AcmeError('malformed', '"jwk" must be a JSON Web Key object');
  if ('d' in jwk || 'p' in jwk || 'k' in jwk)
    throw new AcmeError('badPublicKey', '"jwk" must be a public key; it carries private key material');
  if (!keyFitsAlgorithm(jwk as JWK, alg))
    throw new AcmeError(
      'badPublicKey',
      `the key (${String(jwk.kty)} ${String(jwk.crv ?? '')}) does not fit algorithm ${alg}`,
    );
  if (jwk.kty === 'RSA') checkRsaJwk(jwk);
}

/** Only the members RFC 7638 hashes, so stored keys carry nothing a client made up. */
export function publicJwk(jwk: JWK): JWK {
  const pick = (names: string[]) =>
    Object.fromEntries(names.map((n) => [n, (jwk as Record<string, unknown>)[n]])) as JWK;
  if (jwk.kty === 'EC') return pick(['kty', 'crv', 'x', 'y']);
  if (jwk.kty === 'OKP') return pick(['kty', 'crv', 'x']);
  return pick(['kty', 'n', 'e']);
}

export async function thumbprint(jwk: JWK): Promise<string> {
  try {
    return await calculateJwkThumbprint(publicJwk(jwk), 'sha256');
  } catch (cause) {
    throw new AcmeError('badPublicKey', 'the JSON Web Key is incomplete', { cause });
  }
}

export type VerifyKey = KeyObject;

export function importPublicJwk(jwk: JWK, alg: JwsAlgorithm): VerifyKey {
  checkPublicJwk(jwk, alg);
  try {
    return createPublicKey({ key: publicJwk(jwk) as JsonWebKey, format: 'jwk' });
  } catch (cause) {
    throw new AcmeError('badPublicKey', `the JSON Web Key cannot be used: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Imported account keys by algorithm and JWK text, so a busy account's key is parsed once. The
 * oldest entry goes when the cache is full.
 */
export function createKeyCache(capacity = 10_000): (jwkText: string, alg: JwsAlgorithm) => VerifyKey {
  const keys = new Map<string, VerifyKey>();
  return (jwkText, alg) => {
    const cacheKey = `${alg} ${jwkText}`;
    let key = keys.get(cacheKey);
    if (key === undefined) {
      key = importPublicJwk(JSON.parse(jwkText) as JWK, alg);
      if (keys.size >= capacity) keys.delete(keys.keys().next().value!);
      keys.set(cacheKey, key);
    }
    return key;
  };
}

/**
 * Verifies a JWS signature (RFC 7515 §5.2) and returns the payload bytes (empty for POST-as-GET).
 * node:crypto verifies synchronously; jose's WebCrypto path costs about half a millisecond of CPU
 * more per request (measured with bench:acme), and every ACME request is signed.
 */
export function verifyJws(jws: ParsedJws, key: VerifyKey): Uint8Array {
  const row = ALGORITHMS[jws.header.alg];
  const signature = Buffer.from(jws.input.signature, 'base64url');
  const signed = Buffer.from(`${jws.input.protected}.${jws.input.payload}`, 'ascii');
  let ok = false;
  try {
    ok =
      (row.signatureBytes === undefined || signature.length === row.signatureBytes) &&
      verify(row.hash, signed, { key, dsaEncoding: 'ieee-p1363' }, signature);
  } catch (cause) {
    throw new AcmeError('malformed', 'the JWS signature does not verify with the key it names', { cause });
  }
  if (!ok) throw new AcmeError('malformed', 'the JWS signature does not verify with the key it names');
  return new Uint8Array(Buffer.from(jws.input.payload, 'base64url'));
}
