import { AuthorityError } from '../errors.js';
import type { ProvisionerRow } from '../ports.js';
import { identifiesIdp, parseIdpOptions, refuseRevoke, verifyIdpToken, type IdpTokenConfig } from './idp-token.js';
import { IDP_ALGORITHMS, checkKeyUrl, createJwksCache } from './jwks.js';
import type { ProvisionerMaterial, ProvisionerType, TokenAuthorizer, TokenAuthorizerDeps } from './types.js';

/**
 * An OpenID Connect provisioner as configured (`options` JSON): the provider's issuer URL, the
 * client id its ID tokens are minted for (`audience`), optionally `jwksUrl` (else discovered from
 * the issuer), `maxTokenAge`, and `scopes` for `shortleaf login`, which signs in as a public
 * client with PKCE (RFC 7636): the client id is all it needs, no secret is stored.
 */
export interface OidcProvisionerConfig extends IdpTokenConfig {
  /** The OAuth client id `shortleaf login` uses: the audience. */
  clientId: string;
  /** Scopes `shortleaf login` asks for; `openid` is always among them. */
  scopes: readonly string[];
}

const SCOPE = /^[\x21\x23-\x5b\x5d-\x7e]{1,128}$/; // RFC 6749 §3.3 scope-token

function parseOidc(material: ProvisionerMaterial): OidcProvisionerConfig {
  if (material.publicJwk !== null)
    throw new AuthorityError(
      'badProvisionerOptions',
      "an OIDC provisioner has no key of its own: it trusts the provider's published keys",
    );
  const parsed = parseIdpOptions(material.options, 'OIDC', ['scopes'], (issuer) => {
    checkKeyUrl(issuer, "an OIDC provisioner's --issuer (its keys are discovered there)");
    return { kind: 'discovery', issuer };
  });
  const scopes = parsed.options.scopes ?? ['openid', 'email', 'profile'];
  if (!Array.isArray(scopes) || scopes.some((s) => typeof s !== 'string' || !SCOPE.test(s)))
    throw new AuthorityError('badProvisionerOptions', '--scopes is a comma-separated list of OAuth scopes');
  const { issuer, audience, keys, maxTokenAgeMs, identityLimit } = parsed;
  return {
    issuer,
    audience,
    keys,
    maxTokenAgeMs,
    identityLimit,
    clientId: audience,
    scopes: scopes.includes('openid') ? (scopes as string[]) : ['openid', ...(scopes as string[])],
  };
}

/** Claims with a protocol meaning (RFC 7519 §4.1, OpenID Connect Core §2): never template inputs. `sub` is. */
const PROTOCOL_CLAIMS = new Set([
  'iss',
  'aud',
  'exp',
  'nbf',
  'iat',
  'jti',
  'azp',
  'nonce',
  'at_hash',
  'c_hash',
  'auth_time',
  'acr',
  'sid',
]);

/**
 * An ID token's top-level string claims as template claims (`sub`, `email`, `repository`…).
 * An `email` the provider says it has not verified (`email_verified: false`) is left out, so a
 * template cannot name someone by an address they merely typed.
 */
export function oidcClaims(payload: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(payload).filter(
      (e): e is [string, string] =>
        typeof e[1] === 'string' &&
        !PROTOCOL_CLAIMS.has(e[0]) &&
        !(e[0] === 'email' && payload.email_verified === false),
    ),
  );
}

function configOf(cache: Map<string, { text: string; config: OidcProvisionerConfig }>, row: ProvisionerRow) {
  const text = row.options ?? '{}';
  const hit = cache.get(row.name);
  if (hit !== undefined && hit.text === text) return hit.config;
  const config = parseOidc({ publicJwk: row.publicJwk, options: JSON.parse(text) });
  cache.set(row.name, { text, config });
  return config;
}

function createOidcAuthorizer(deps: TokenAuthorizerDeps): TokenAuthorizer {
  const jwks = createJwksCache({ now: deps.now });
  const configs = new Map<string, { text: string; config: OidcProvisionerConfig }>();
  return {
    async authorizeSign(header, row) {
      const config = configOf(configs, row);
      const payload = await verifyIdpToken(header, row, config, jwks, deps);
      if (typeof payload.sub !== 'string' || payload.sub === '')
        throw new AuthorityError('tokenMalformed', 'the token "sub" must be a non-empty string');
      return {
        provisioner: row.name,
        subject: null,
        names: [],
        claims: oidcClaims(payload),
        use: null,
        // OpenID Connect Core §2: `sub` is unique only within its issuer, so the two name one person or job.
        perIdentity: { identity: `${config.issuer}#${payload.sub}`, limit: config.identityLimit },
      };
    },
    authorizeRevoke: () => refuseRevoke('OIDC ID'),
  };
}

/** Reads an OIDC provisioner's stored configuration: what `shortleaf login` needs (client id, scopes, issuer). */
export function oidcConfigOf(row: Pick<ProvisionerRow, 'publicJwk' | 'options'>): OidcProvisionerConfig {
  return parseOidc({ publicJwk: row.publicJwk, options: JSON.parse(row.options ?? '{}') });
}

/**
 * ID tokens of any OpenID Connect provider (Okta, Entra ID, Google, Keycloak, Dex) and CI systems
 * whose job tokens have the same shape (GitHub Actions, GitLab). Bearer tokens, not single-use:
 * their audience, their life, the maximum token age and the per-identity limit (counted per
 * `iss` and `sub`) bound a replay (see kubernetes.ts).
 */
export const oidcProvisioner: ProvisionerType<OidcProvisionerConfig> = {
  type: 'oidc',
  label: 'OIDC',
  summary: 'oidc (OpenID Connect ID tokens)',
  parse: parseOidc,
  singleUse: false,
  mtlsRenewalByDefault: true,
  authenticateAgain: 'sign in again (shortleaf login) and get a new certificate',
  tokens: {
    algorithms: IDP_ALGORITHMS,
    create: createOidcAuthorizer,
    identifies: identifiesIdp,
  },
};
