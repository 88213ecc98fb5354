import { decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { formatDuration, parseDuration } from '../duration.js';
import { AuthorityError } from '../errors.js';
import { DEFAULT_IDENTITY_LIMIT, parseIdentityLimit, type IdentityLimit } from '../identity-limit.js';
import type { ProvisionerRow } from '../ports.js';
import { TOKEN_CLOCK_SKEW_S, type TokenHeader } from '../token.js';
import { IDP_ALGORITHMS, checkKeyUrl, parseJwks, type JwksCache, type JwksSource } from './jwks.js';
import type { RevokeAuthorization, TokenAuthorizerDeps } from './types.js';

/**
 * What every provisioner that trusts someone else's tokens is configured with (Kubernetes
 * service-account tokens, OpenID Connect ID tokens): whose tokens, for which audience, where
 * their keys are, and how old a token may be.
 */
export interface IdpTokenConfig {
  /** The exact `iss` the tokens carry. */
  issuer: string;
  /** A value the token's `aud` must contain. */
  audience: string;
  keys: JwksSource;
  /** Tokens issued (`iat`) longer ago than this are refused, whatever their `exp` says. */
  maxTokenAgeMs: number;
  /** How many certificates one identity may get per window; null: no limit. */
  identityLimit: IdentityLimit | null;
}

/** One hour: a projected token's default life, and the usual ID token's. */
export const DEFAULT_MAX_TOKEN_AGE_MS = 60 * 60 * 1000;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function bad(message: string): never {
  throw new AuthorityError('badProvisionerOptions', message);
}

/**
 * Parses the options both types share: `issuer`, `audience`, `jwks` (a stored key set) or
 * `jwksUrl`, `maxTokenAge` (a duration), `maxCertificatesPerIdentity` (`N/PERIOD` or `none`;
 * DEFAULT_IDENTITY_LIMIT when absent). `noKeys` says what to do without either: discover them
 * from the issuer (OIDC) or refuse (Kubernetes). Unknown keys are refused, as everywhere.
 */
export function parseIdpOptions(
  options: unknown,
  label: string,
  extraKeys: readonly string[],
  noKeys: (issuer: string) => JwksSource,
): IdpTokenConfig & { options: Record<string, unknown> } {
  if (!isObject(options)) bad(`${label} provisioner options must be a JSON object`);
  const known = ['issuer', 'audience', 'jwks', 'jwksUrl', 'maxTokenAge', 'maxCertificatesPerIdentity', ...extraKeys];
  const unknown = Object.keys(options).find((k) => !known.includes(k));
  if (unknown !== undefined)
    bad(`unknown ${label} provisioner option ${JSON.stringify(unknown)} (known: ${known.join(', ')})`);
  const { issuer, audience, jwks, jwksUrl, maxTokenAge } = options;
  if (typeof issuer !== 'string' || issuer === '' || issuer.length > 1024)
    bad(`a ${label} provisioner needs the issuer its tokens carry (--issuer)`);
  if (typeof audience !== 'string' || audience === '' || audience.length > 1024)
    bad(`a ${label} provisioner needs the audience its tokens are minted for (--audience)`);
  if (jwks !== undefined && jwksUrl !== undefined)
    bad(`give a ${label} provisioner --jwks-file or --jwks-url, not both`);
  let keys: JwksSource;
  if (jwks !== undefined) keys = { kind: 'inline', jwks: parseJwks(jwks, `the ${label} provisioner's key set`) };
  else if (jwksUrl !== undefined) {
    if (typeof jwksUrl !== 'string') bad('jwksUrl must be a string');
    keys = { kind: 'url', url: checkKeyUrl(jwksUrl, '--jwks-url') };
  } else keys = noKeys(issuer);
  let maxTokenAgeMs = DEFAULT_MAX_TOKEN_AGE_MS;
  if (maxTokenAge !== undefined) {
    try {
      maxTokenAgeMs = parseDuration(String(maxTokenAge));
    } catch (cause) {
      bad(`--max-token-age: ${(cause as Error).message}`);
    }
    if (maxTokenAgeMs <= 0 || maxTokenAgeMs > 24 * 60 * 60 * 1000)
      bad('--max-token-age must be longer than 0s and at most 24h');
  }
  const identityLimit =
    options.maxCertificatesPerIdentity === undefined
      ? DEFAULT_IDENTITY_LIMIT
      : parseIdentityLimit(options.maxCertificatesPerIdentity);
  return { issuer, audience, keys, maxTokenAgeMs, identityLimit, options };
}

/**
 * Verifies a token someone else minted against its issuer's published keys: an asymmetric
 * signature by a key the issuer publishes (`kid`, or each key that fits when there is none),
 * `iss` exactly, `aud` containing the audience (and `azp`, when present with several audiences,
 * naming it: OpenID Connect Core §3.1.3.7), `exp`/`nbf` with the usual skew, and `iat` no older
 * than the maximum token age. Returns the payload.
 */
export async function verifyIdpToken(
  header: TokenHeader,
  row: ProvisionerRow,
  config: IdpTokenConfig,
  jwks: JwksCache,
  deps: TokenAuthorizerDeps,
): Promise<JWTPayload & { iat: number; exp: number }> {
  if (header.iss !== config.issuer)
    throw new AuthorityError(
      'tokenIssuer',
      `the token's issuer ${JSON.stringify(header.iss)} is not the one provisioner ${row.name} trusts`,
    );
  if (!IDP_ALGORITHMS.includes(header.alg))
    throw new AuthorityError('tokenMalformed', `token algorithm ${JSON.stringify(header.alg)} is not allowed`);
  const { kid } = decodeProtectedHeader(header.token);
  const candidates = await jwks.keysFor(row.name, config.keys, { alg: header.alg, kid });
  let last: unknown;
  for (const { key } of candidates) {
    try {
      const { payload } = await jwtVerify(header.token, key, {
        algorithms: [header.alg],
        issuer: config.issuer,
        audience: config.audience,
        clockTolerance: TOKEN_CLOCK_SKEW_S,
        currentDate: deps.now(),
        requiredClaims: ['exp', 'iat', 'aud', 'sub'],
      });
      const { iat, exp, aud, azp } = payload;
      if (typeof iat !== 'number' || typeof exp !== 'number')
        throw new AuthorityError('tokenMalformed', 'the token "iat" and "exp" must be numbers');
      if (Array.isArray(aud) && aud.length > 1 && azp !== undefined && azp !== config.audience)
        throw new AuthorityError('tokenAudience', `the token's authorized party (azp) is not ${config.audience}`);
      const ageMs = deps.now().getTime() - iat * 1000;
      if (ageMs > config.maxTokenAgeMs + TOKEN_CLOCK_SKEW_S * 1000)
        throw new AuthorityError(
          'tokenTooOld',
          `the token was issued ${formatDuration(Math.max(0, Math.floor(ageMs / 1000) * 1000))} ago; provisioner ${row.name} takes tokens at most ${formatDuration(config.maxTokenAgeMs)} old (get a fresh one)`,
        );
      if (iat * 1000 > deps.now().getTime() + TOKEN_CLOCK_SKEW_S * 1000)
        throw new AuthorityError('tokenExpired', 'the token is issued in the future (check the clock)');
      return payload as JWTPayload & { iat: number; exp: number };
    } catch (cause) {
      if (cause instanceof joseErrors.JWSSignatureVerificationFailed && candidates.length > 1) {
        last = cause;
        continue; // no kid: another key of the set may have signed it
      }
      throw mapError(cause, config);
    }
  }
  throw mapError(last, config);
}

function mapError(cause: unknown, config: IdpTokenConfig): AuthorityError {
  if (cause instanceof AuthorityError) return cause;
  if (cause instanceof joseErrors.JWTExpired)
    return new AuthorityError('tokenExpired', 'the token has expired; get a fresh one', { cause });
  if (cause instanceof joseErrors.JWTClaimValidationFailed) {
    if (cause.claim === 'aud')
      return new AuthorityError('tokenAudience', `the token's audience (aud) does not contain ${config.audience}`, {
        cause,
      });
    if (cause.claim === 'iss')
      return new AuthorityError('tokenIssuer', `the token's issuer is not ${config.issuer}`, { cause });
    if (cause.claim === 'nbf' || cause.claim === 'iat')
      return new AuthorityError('tokenExpired', 'the token is not valid yet (check the clock)', { cause });
    return new AuthorityError('tokenMalformed', `the token claim "${cause.claim}" is invalid: ${cause.reason}`, {
      cause,
    });
  }
  if (cause instanceof joseErrors.JWSSignatureVerificationFailed)
    return new AuthorityError('tokenSignature', "the token's signature does not verify with its issuer's key", {
      cause,
    });
  return new AuthorityError('tokenMalformed', 'the token cannot be verified', { cause });
}

/** These tokens prove who the caller is, not which certificate they may revoke. */
export async function refuseRevoke(label: string): Promise<RevokeAuthorization> {
  throw new AuthorityError(
    'notAuthorized',
    `${label} tokens cannot revoke certificates: revoke with a JWK provisioner's token or over mutual TLS`,
  );
}

/**
 * The audience a row wants if it takes tokens from `iss`: how `iss` finds its provisioner. Reads
 * only the two options, for every row on every token; the rest is parsed when the row is used.
 */
export function identifiesIdp(row: Pick<ProvisionerRow, 'options'>, iss: string): { audience: string } | null {
  let options: unknown;
  try {
    options = JSON.parse(row.options ?? '{}');
  } catch {
    return null; // a row this version cannot read takes no tokens
  }
  if (!isObject(options) || options.issuer !== iss || typeof options.audience !== 'string') return null;
  return { audience: options.audience };
}
