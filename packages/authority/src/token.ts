import {
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  importJWK,
  jwtVerify,
  type CryptoKey,
  type JWK,
  type KeyObject,
} from 'jose';
import { parseName, type SubjectName } from '@shortleaf/pki';
import { AuthorityError } from './errors.js';

/** RFC 7519 claims of a Shortleaf one-time token, after verification. */
export interface TokenClaims {
  provisioner: string;
  subject: SubjectName;
  names: SubjectName[];
  jti: string;
  expiresAt: Date;
  /** What spending this token records: see `tokenUse`. */
  use: TokenUse;
  /**
   * The token's other string-valued claims (e.g. `namespace`, `service`), which a provisioner's
   * template may put into URI SANs. Registered claims and non-string values are left out.
   */
  claims: Record<string, string>;
}

/** A spent token as the store remembers it, to refuse it a second time. */
export interface TokenUse {
  provisioner: string;
  jti: string;
  /** The last instant the token could still verify; the record must live at least until then. */
  expiresAt: Date;
}

/**
 * The record of a spent token. The verifier accepts a token until `exp` plus the clock skew it
 * tolerates, so the record must outlive that instant, not `exp`: a pruner deleting it at `exp`
 * would let the token be spent again during the skew. Computed here, next to the verifier, so
 * the two can never disagree (sign and revoke tokens alike).
 */
export function tokenUse(provisioner: string, jti: string, expSeconds: number): TokenUse {
  return { provisioner, jti, expiresAt: new Date((expSeconds + TOKEN_CLOCK_SKEW_S) * 1000) };
}

/** Claims with a meaning of their own (RFC 7519 §4.1, and our `sans`); never template inputs. */
export const REGISTERED_CLAIMS: readonly string[] = ['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'sans'];

/** Longest token lifetime (exp − iat) we accept: one-time tokens are minted just before use. */
export const MAX_TOKEN_LIFETIME_S = 300;
/** Clock skew tolerated on exp/nbf/iat. */
export const TOKEN_CLOCK_SKEW_S = 60;
/** Most names one token may authorise; more is refused, not truncated. */
export const MAX_TOKEN_NAMES = 100;
const MAX_TOKEN_BYTES = 8 * 1024;

/** JWS algorithms of one-time tokens (RFC 7518 §3.4, RFC 8037 §3.1); never HS* or none. */
export const TOKEN_ALGORITHMS: readonly string[] = ['ES256', 'EdDSA'];

/** What the front of a token says before anything is verified: enough to find its provisioner. */
export interface TokenHeader {
  token: string;
  alg: string;
  /** The provisioner the token names; nothing is trusted until its signature verifies. */
  iss: string;
}

/**
 * Reads a token's algorithm and issuer without trusting them: the checks every token passes
 * before any provisioner is looked up. `algorithms` is every algorithm some provisioner type
 * takes, so a symmetric or unsigned token (`HS256`, `none`) is refused before any lookup.
 */
export function readTokenHeader(token: unknown, algorithms: readonly string[] = TOKEN_ALGORITHMS): TokenHeader {
  if (typeof token !== 'string' || token.length === 0)
    throw new AuthorityError('tokenMalformed', 'a token (a JWT string) is required');
  if (token.length > MAX_TOKEN_BYTES)
    throw new AuthorityError('tokenMalformed', `the token is longer than ${MAX_TOKEN_BYTES} bytes`);
  let alg: string;
  let iss: unknown;
  try {
    alg = decodeProtectedHeader(token).alg ?? '';
    iss = decodeJwt(token).iss;
  } catch (cause) {
    throw new AuthorityError('tokenMalformed', 'the token is not a JWT', { cause });
  }
  // Two classic forgeries get codes of their own: an unsigned token, and a token MACed with a
  // secret (an attacker who knows a public key can "sign" HS256 with it if a verifier lets them).
  if (alg.toLowerCase() === 'none')
    throw new AuthorityError('tokenUnsigned', 'token algorithm "none" is refused: a token must be signed');
  if (/^HS\d+$/i.test(alg))
    throw new AuthorityError(
      'tokenSymmetric',
      `token algorithm ${JSON.stringify(alg)} is refused: only asymmetric signatures (${algorithms.join(', ')})`,
    );
  if (!algorithms.includes(alg))
    throw new AuthorityError(
      'tokenMalformed',
      `token algorithm ${JSON.stringify(alg)} is not allowed (use ${algorithms.join(' or ')})`,
    );
  if (typeof iss !== 'string' || iss === '')
    throw new AuthorityError('tokenMalformed', 'the token has no "iss" naming its provisioner');
  return { token, alg, iss };
}

/** The claims of a verified revoke token: its `sub` is the serial of the certificate to revoke. */
export interface RevokeTokenClaims {
  provisioner: string;
  serial: string;
  jti: string;
  expiresAt: Date;
  use: TokenUse;
}

/**
 * Verifies one-time tokens against a key already found: signature (ES256 or EdDSA), the
 * audience, a lifetime of at most five minutes, and the claims we issue on. Keeps each imported
 * key while the provisioner's JWK stays the same. The JWK provisioner (provisioners/jwk.ts) uses it.
 */
export function createJwkTokenVerifier(deps: { now(): Date; maxNames?: number }) {
  const maxNames = deps.maxNames ?? MAX_TOKEN_NAMES;
  const keys = new Map<string, { jwk: string; key: CryptoKey | KeyObject | Uint8Array }>();

  async function keyFor(provisioner: string, alg: string, jwk: string) {
    const cached = keys.get(`${provisioner}/${alg}`);
    if (cached !== undefined && cached.jwk === jwk) return cached.key;
    let key;
    try {
      key = await importJWK(JSON.parse(jwk) as JWK, alg);
    } catch (cause) {
      // jose cannot use this provisioner's key with the token's algorithm (EdDSA token, EC key).
      throw new AuthorityError(
        'tokenSignature',
        `the token's signature cannot be checked: provisioner ${provisioner} has no ${alg} key`,
        { cause },
      );
    }
    keys.set(`${provisioner}/${alg}`, { jwk, key });
    return key;
  }

  /** Signature, audience, lifetime and the claims every token carries; returns the payload. */
  async function verifyJwt(
    header: TokenHeader,
    jwk: string,
    audiences: readonly string[],
  ): Promise<{ iss: string; sub: string; jti: string; exp: number; payload: Record<string, unknown> }> {
    const { token, alg, iss } = header;
    const key = await keyFor(iss, alg, jwk);
    let payload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: [...TOKEN_ALGORITHMS],
        issuer: iss,
        audience: [...audiences],
        clockTolerance: TOKEN_CLOCK_SKEW_S,
        currentDate: deps.now(),
        requiredClaims: ['exp', 'iat', 'jti', 'sub', 'aud'],
      }));
    } catch (cause) {
      throw mapJoseError(cause);
    }
    const { exp, iat, nbf, jti, sub } = payload as Record<string, unknown>;
    if (typeof iat !== 'number' || typeof exp !== 'number')
      throw new AuthorityError('tokenMalformed', 'the token "iat" and "exp" must be numbers');
    const start = typeof nbf === 'number' ? Math.max(nbf, iat) : iat;
    if (exp - start > MAX_TOKEN_LIFETIME_S) {
      throw new AuthorityError(
        'tokenLifetime',
        `the token lives ${exp - start}s; one-time tokens may live at most ${MAX_TOKEN_LIFETIME_S}s`,
      );
    }
    // The token's own iat cannot be trusted to bound its life: a future iat would stretch it.
    const nowS = deps.now().getTime() / 1000;
    if (iat > nowS + TOKEN_CLOCK_SKEW_S || exp - nowS > MAX_TOKEN_LIFETIME_S + TOKEN_CLOCK_SKEW_S) {
      throw new AuthorityError(
        'tokenLifetime',
        `the token is issued in the future or expires more than ${MAX_TOKEN_LIFETIME_S}s from now (check the clock)`,
      );
    }
    if (typeof jti !== 'string' || jti.length < 8 || jti.length > 128)
      throw new AuthorityError('tokenMalformed', 'the token "jti" must be a string of 8 to 128 characters');
    if (typeof sub !== 'string') throw new AuthorityError('tokenMalformed', 'the token "sub" must be a string');
    return { iss, sub, jti, exp, payload: payload as Record<string, unknown> };
  }

  /** Verifies a sign token: its `sub` and `sans` are the names the certificate may carry. */
  async function verifySign(header: TokenHeader, jwk: string, audiences: readonly string[]): Promise<TokenClaims> {
    const { iss, sub, jti, exp, payload } = await verifyJwt(header, jwk, audiences);
    const { sans } = payload;
    if (sans !== undefined && (!Array.isArray(sans) || sans.some((s) => typeof s !== 'string'))) {
      throw new AuthorityError('tokenMalformed', 'the token "sans" claim must be a list of strings');
    }
    const rawNames = (sans as string[] | undefined) ?? [sub];
    if (rawNames.length === 0) throw new AuthorityError('tokenMalformed', 'a token must authorise at least one name');
    if (rawNames.length > maxNames)
      throw new AuthorityError(
        'tokenMalformed',
        `the token names ${rawNames.length} names; the limit is ${maxNames} (limits.maxNames)`,
      );
    const names = dedupe(rawNames.map((n) => parseTokenName(n)));
    const subject = parseTokenName(sub);
    if (!names.some((n) => n.kind === subject.kind && n.value === subject.value)) {
      throw new AuthorityError('tokenMalformed', `the token "sub" (${sub}) must be one of its "sans"`);
    }
    return {
      provisioner: iss,
      subject,
      names,
      jti,
      expiresAt: new Date(exp * 1000),
      use: tokenUse(iss, jti, exp),
      claims: customClaims(payload),
    };
  }

  /** Verifies a revoke token: its `sub` is the serial of the certificate to revoke. */
  async function verifyRevoke(
    header: TokenHeader,
    jwk: string,
    audiences: readonly string[],
  ): Promise<RevokeTokenClaims> {
    const { iss, sub, jti, exp } = await verifyJwt(header, jwk, audiences);
    return { provisioner: iss, serial: sub, jti, expiresAt: new Date(exp * 1000), use: tokenUse(iss, jti, exp) };
  }

  return { verifySign, verifyRevoke };
}

export interface TokenVerifierDeps {
  /** Looks up a JWK provisioner's public key by name; null when there is none. */
  publicJwk(provisioner: string): Promise<string | null>;
  now(): Date;
  /** Most names one token may authorise (`limits.maxNames`); MAX_TOKEN_NAMES when absent. */
  maxNames?: number;
}

/**
 * Verifies one-time tokens end to end, finding the key by the token's `iss`: `readTokenHeader`,
 * then the JWK verifier. Single use (`jti`) is enforced later, atomically with recording the
 * certificate, so a refused request burns nothing. The authority goes through the provisioner
 * registry instead (provisioners/token-authorizer.ts); this stays for callers holding one key.
 */
export function createTokenVerifier(deps: TokenVerifierDeps) {
  const jwt = createJwkTokenVerifier(deps);

  async function found(token: unknown): Promise<{ header: TokenHeader; jwk: string }> {
    const header = readTokenHeader(token);
    const jwk = await deps.publicJwk(header.iss);
    if (jwk === null)
      throw new AuthorityError('unknownProvisioner', `no JWK provisioner named ${JSON.stringify(header.iss)}`);
    return { header, jwk };
  }

  return {
    verifyToken: async (token: unknown, audiences: readonly string[]): Promise<TokenClaims> => {
      const { header, jwk } = await found(token);
      return jwt.verifySign(header, jwk, audiences);
    },
    verifyRevokeToken: async (token: unknown, audiences: readonly string[]): Promise<RevokeTokenClaims> => {
      const { header, jwk } = await found(token);
      return jwt.verifyRevoke(header, jwk, audiences);
    },
  };
}

/**
 * String-valued claims that are not registered ones. `Object.fromEntries` defines own properties,
 * so a claim named `__proto__` stays data; readers look claims up with `Object.hasOwn`.
 */
function customClaims(payload: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(payload).filter(
      (e): e is [string, string] => typeof e[1] === 'string' && !REGISTERED_CLAIMS.includes(e[0]),
    ),
  );
}

function parseTokenName(raw: string): SubjectName {
  try {
    return parseName(raw);
  } catch (cause) {
    throw new AuthorityError('tokenMalformed', `the token names an invalid name: ${(cause as Error).message}`, {
      cause,
    });
  }
}

function dedupe(names: SubjectName[]): SubjectName[] {
  const seen = new Set<string>();
  return names.filter((n) => {
    const k = `${n.kind}:${n.value}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function mapJoseError(cause: unknown): AuthorityError {
  if (cause instanceof joseErrors.JWTExpired)
    return new AuthorityError('tokenExpired', 'the token has expired; mint a new one', { cause });
  if (cause instanceof joseErrors.JWTClaimValidationFailed) {
    if (cause.claim === 'aud')
      return new AuthorityError('tokenAudience', "the token's audience (aud) is not this CA's endpoint", { cause });
    if (cause.claim === 'nbf' || cause.claim === 'iat')
      return new AuthorityError('tokenExpired', 'the token is not valid yet (check the clock)', { cause });
    return new AuthorityError('tokenMalformed', `the token claim "${cause.claim}" is invalid: ${cause.reason}`, {
      cause,
    });
  }
  if (cause instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new AuthorityError('tokenSignature', "the token's signature does not verify with the provisioner's key", {
      cause,
    });
  }
  return new AuthorityError('tokenMalformed', 'the token cannot be verified', { cause });
}
