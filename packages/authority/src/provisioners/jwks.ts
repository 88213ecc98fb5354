import { createPublicKey, type KeyObject } from 'node:crypto';
import { AuthorityError } from '../errors.js';

/**
 * JWS algorithms an identity provider's tokens may use (RFC 7518 §3.1, RFC 8037): asymmetric
 * only, so the CA holds nothing that could mint a token. `none` and `HS*` are refused before any
 * key is looked at (token.ts `readTokenHeader`).
 */
export const IDP_ALGORITHMS: readonly string[] = ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA'];

/** Which key each algorithm needs (RFC 7518 §3.3–3.5, RFC 8037 §3.1): `alg` must fit the key. */
const KEY_FOR_ALG: Readonly<Record<string, { kty: string; crv?: string }>> = {
  RS256: { kty: 'RSA' },
  RS384: { kty: 'RSA' },
  RS512: { kty: 'RSA' },
  PS256: { kty: 'RSA' },
  ES256: { kty: 'EC', crv: 'P-256' },
  ES384: { kty: 'EC', crv: 'P-384' },
  EdDSA: { kty: 'OKP', crv: 'Ed25519' },
};

/** RSA keys shorter than this are refused (NIST SP 800-131A); a 1024-bit IdP key is not trusted. */
const MIN_RSA_BITS = 2048;

/** Where a provisioner's keys come from: stored with it at `provisioner add`, or fetched. */
export type JwksSource =
  | { kind: 'inline'; jwks: { keys: unknown[] } }
  /** A JWKS document's URL (`--jwks-url`, or a provider's `jwks_uri`). */
  | { kind: 'url'; url: string }
  /** An OpenID provider: its discovery document names `jwks_uri` (OpenID Connect Discovery §4). */
  | { kind: 'discovery'; issuer: string };

export interface JwksCacheOptions {
  now(): Date;
  /** How long fetched keys are used before they are fetched again (default one hour). */
  maxAgeMs?: number;
  /**
   * Shortest time between two fetches for one provisioner (default 60 s): a token with an unknown
   * `kid` makes the cache fetch again, at most this often, so unknown kids cannot hammer the IdP.
   */
  minRefetchMs?: number;
  /** Each fetch gives up after this long (default 5 s). */
  timeoutMs?: number;
  /** Longest key set or discovery document read (default 256 KiB). */
  maxBytes?: number;
}

/** A key the token's header may have been signed with, ready for verification. */
export interface CandidateKey {
  kid: string | undefined;
  key: KeyObject;
}

interface Entry {
  /** The source as configured, so an edited provisioner starts afresh. */
  source: string;
  keys: readonly Record<string, unknown>[];
  fetchedAt: number;
  /** When the last fetch started, successful or not: the rate limit. */
  attemptAt: number;
  /** Why the last fetch failed, answered again until the rate limit allows another. */
  failure: AuthorityError | null;
  inflight: Promise<void> | null;
}

/**
 * Whether a URL may serve keys: HTTPS, or plain HTTP to the machine itself (a test IdP, a
 * cluster's API server behind `kubectl proxy`). Keys fetched in clear over a network would let
 * anyone on the path mint tokens.
 */
export function checkKeyUrl(raw: string, what: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AuthorityError('badProvisionerOptions', `${what} ${JSON.stringify(raw)} is not a URL`);
  }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback))
    throw new AuthorityError('badProvisionerOptions', `${what} must be an https:// URL (http:// only to localhost)`);
  if (url.username !== '' || url.password !== '')
    throw new AuthorityError('badProvisionerOptions', `${what} must not carry a user name or password`);
  return url.href;
}

/**
 * Checks a JWKS document (RFC 7517 §5) as stored at `provisioner add`: an object with a `keys`
 * list of public keys, at least one of them usable. Returns it as given.
 */
export function parseJwks(doc: unknown, what: string): { keys: Record<string, unknown>[] } {
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys))
    throw new AuthorityError('badProvisionerOptions', `${what} must be a JWKS document: {"keys": [...]}`);
  const keys = (doc as { keys: unknown[] }).keys;
  if (keys.some((k) => typeof k !== 'object' || k === null || Array.isArray(k)))
    throw new AuthorityError('badProvisionerOptions', `${what}: every entry of "keys" must be a JWK object`);
  const jwks = keys as Record<string, unknown>[];
  // "d" (RFC 7518 §6.2.2.1, §6.3.2.1; RFC 8037 §2) is a private key, which the CA must never hold.
  if (jwks.some((k) => 'd' in k))
    throw new AuthorityError('badProvisionerOptions', `${what} holds a private key; give the public keys only`);
  if (!jwks.some((k) => IDP_ALGORITHMS.some((alg) => fits(k, alg) && importKey(k) !== null)))
    throw new AuthorityError(
      'badProvisionerOptions',
      `${what} has no usable signing key (RSA of ${MIN_RSA_BITS} bits or more, EC P-256/P-384, Ed25519)`,
    );
  return { keys: jwks };
}

/** Whether a JWK may verify `alg`: its type and curve, and its own `alg` and `use` if it says. */
function fits(jwk: Record<string, unknown>, alg: string): boolean {
  const want = KEY_FOR_ALG[alg];
  if (want === undefined || jwk.kty !== want.kty) return false;
  if (want.crv !== undefined && jwk.crv !== want.crv) return false;
  if (jwk.alg !== undefined && jwk.alg !== alg) return false;
  return jwk.use === undefined || jwk.use === 'sig';
}

function importKey(jwk: Record<string, unknown>): KeyObject | null {
  try {
    const key = createPublicKey({ key: jwk as never, format: 'jwk' });
    if (key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS) return null;
    return key;
  } catch {
    return null;
  }
}

/** Reads a JSON document of at most `maxBytes`, giving up after `timeoutMs`. */
async function fetchJson(url: string, timeoutMs: number, maxBytes: number): Promise<unknown> {
  const response = await fetch(url, {
    signal: AbortSignal.timeout(timeoutMs),
    // A redirect could lead off https; a provider names its final URL.
    redirect: 'error',
    headers: { accept: 'application/json' },
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > maxBytes) throw new Error(`the document is larger than ${maxBytes} bytes`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += (chunk as Uint8Array).byteLength;
    if (size > maxBytes) throw new Error(`the document is larger than ${maxBytes} bytes`);
    chunks.push(chunk as Uint8Array);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

/**
 * The keys of every provisioner one authority verifies tokens for, one entry per provisioner:
 * fetched on first use, used for `maxAgeMs`, fetched again (at most once per `minRefetchMs`) when
 * a token names a `kid` the cached set lacks, so an IdP's key rotation is picked up without a
 * restart and a stream of made-up kids costs the IdP one request a minute.
 */
export function createJwksCache(opts: JwksCacheOptions) {
  const maxAgeMs = opts.maxAgeMs ?? 60 * 60 * 1000;
  const minRefetchMs = opts.minRefetchMs ?? 60 * 1000;
  const timeoutMs = opts.timeoutMs ?? 5000;
  const maxBytes = opts.maxBytes ?? 256 * 1024;
  const entries = new Map<string, Entry>();

  async function load(source: JwksSource): Promise<Record<string, unknown>[]> {
    if (source.kind === 'inline') return source.jwks.keys as Record<string, unknown>[];
    let url = source.kind === 'url' ? source.url : '';
    try {
      if (source.kind === 'discovery') {
        const where = `${source.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
        const doc = (await fetchJson(checkKeyUrl(where, 'the discovery URL'), timeoutMs, maxBytes)) as Record<
          string,
          unknown
        >;
        // OpenID Connect Discovery §4.3: the document must name the issuer it was fetched for.
        if (doc?.issuer !== source.issuer) throw new Error(`its "issuer" is not ${source.issuer}`);
        if (typeof doc.jwks_uri !== 'string') throw new Error('it has no "jwks_uri"');
        url = checkKeyUrl(doc.jwks_uri, 'the provider\'s "jwks_uri"');
      }
      const jwks = await fetchJson(url, timeoutMs, maxBytes);
      return parseJwks(jwks, 'the fetched key set').keys;
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new AuthorityError(
        'keysUnavailable',
        `the token issuer's keys cannot be fetched${url === '' ? '' : ` from ${url}`}: ${reason}`,
        { cause },
      );
    }
  }

  /** Fetches `name`'s keys now, sharing one fetch between concurrent callers. */
  async function refresh(name: string, source: JwksSource, sourceText: string): Promise<Entry> {
    let entry = entries.get(name);
    if (entry === undefined || entry.source !== sourceText) {
      entry = {
        source: sourceText,
        keys: [],
        fetchedAt: -Infinity,
        attemptAt: -Infinity,
        failure: null,
        inflight: null,
      };
      entries.set(name, entry);
    }
    const e = entry;
    if (e.inflight === null) {
      e.attemptAt = opts.now().getTime();
      e.inflight = load(source)
        .then(
          (keys) => {
            e.keys = keys;
            e.fetchedAt = opts.now().getTime();
            e.failure = null;
          },
          (err: unknown) => {
            if (err instanceof AuthorityError) e.failure = err;
            throw err;
          },
        )
        .finally(() => {
          e.inflight = null;
        });
    }
    await e.inflight;
    return e;
  }

  /**
   * The keys that may have signed a token with this header: those with its `kid` (every key when
   * the token names none) whose type fits `alg`. Refuses with `tokenUnknownKey` when no key has
   * the kid even after a fetch the rate limit allows, `tokenKeyMismatch` when keys with the kid
   * exist but none fits the algorithm.
   */
  async function keysFor(
    name: string,
    source: JwksSource,
    header: { alg: string; kid?: string | undefined },
  ): Promise<CandidateKey[]> {
    const sourceText = JSON.stringify(source);
    const now = opts.now().getTime();
    const cached = entries.get(name);
    let entry: Entry;
    if (cached === undefined || cached.source !== sourceText) entry = await refresh(name, source, sourceText);
    else if (now - cached.fetchedAt <= maxAgeMs) entry = cached;
    // An IdP that is down is asked again at most once per minRefetchMs, however many tokens arrive.
    else if (cached.failure !== null && now - cached.attemptAt < minRefetchMs)
      throw new AuthorityError('keysUnavailable', cached.failure.message);
    else entry = await refresh(name, source, sourceText);
    const named = (e: Entry) => e.keys.filter((k) => header.kid === undefined || k.kid === header.kid);
    let matching = named(entry);
    if (matching.length === 0 && source.kind !== 'inline' && now - entry.attemptAt >= minRefetchMs) {
      entry = await refresh(name, source, sourceText);
      matching = named(entry);
    }
    if (matching.length === 0)
      throw new AuthorityError(
        'tokenUnknownKey',
        header.kid === undefined
          ? 'the token issuer publishes no keys'
          : `the token is signed with key ${JSON.stringify(header.kid)}, which its issuer does not publish`,
      );
    const usable = matching
      .filter((k) => fits(k, header.alg))
      .map((k) => ({ kid: typeof k.kid === 'string' ? k.kid : undefined, key: importKey(k) }))
      .filter((k): k is CandidateKey => k.key !== null);
    if (usable.length === 0)
      throw new AuthorityError(
        'tokenKeyMismatch',
        `the token says ${JSON.stringify(header.alg)}, which its key${header.kid === undefined ? 's' : ` ${JSON.stringify(header.kid)}`} cannot verify`,
      );
    return usable;
  }

  return { keysFor };
}

export type JwksCache = ReturnType<typeof createJwksCache>;
