import type { SubjectName } from '@shortleaf/pki';
import type { IdentityLimit } from '../identity-limit.js';
import type { ProvisionerRow } from '../ports.js';
import type { TokenHeader, TokenUse } from '../token.js';

/**
 * What a sign credential grants, as its provisioner decided it (smallstep's `AuthorizeSign`):
 * the names the certificate may carry, the claims its template may use, and the one-time use to
 * spend in the transaction that records the certificate (null for a credential that is not
 * single-use, such as a bearer token a cluster hands every pod).
 */
export interface SignAuthorization {
  provisioner: string;
  /**
   * The name the subject CN comes from; one of `names`. Null for a credential that names nothing
   * itself (a service-account or ID token): its names come only from the provisioner's template.
   */
  subject: SubjectName | null;
  names: SubjectName[];
  /** String claims a template may put into names (`{namespace}`); never registered claims. */
  claims: Record<string, string>;
  use: TokenUse | null;
  /**
   * For a reusable bearer token (a service-account or ID token): who it names, recorded as the
   * certificate's requester, and how many certificates that identity may get per window (null:
   * no limit). Absent for a single-use credential, which is its own limit.
   */
  perIdentity?: { identity: string; limit: IdentityLimit | null };
}

/** What a revoke credential grants: the serial it names, and the use to spend (or none). */
export interface RevokeAuthorization {
  provisioner: string;
  /** As the credential wrote it; the authority normalises and compares it with the certificate. */
  serial: string;
  use: TokenUse | null;
}

/**
 * Verifies the tokens of one provisioner type; built once per authority, so it may cache keys.
 * `header` has been read (not trusted) and `row` is the provisioner its `iss` named.
 */
export interface TokenAuthorizer {
  authorizeSign(header: TokenHeader, row: ProvisionerRow, audiences: readonly string[]): Promise<SignAuthorization>;
  authorizeRevoke(header: TokenHeader, row: ProvisionerRow, audiences: readonly string[]): Promise<RevokeAuthorization>;
}

/** What a token-taking type is built with. */
export interface TokenAuthorizerDeps {
  now(): Date;
  /** Most names one credential may authorise (`limits.maxNames`). */
  maxNames: number;
}

/** What a provisioner is made of besides its name and policy, as stored (`publicJwk`, `options` JSON). */
export interface ProvisionerMaterial {
  publicJwk: string | null;
  /** Parsed JSON of the `options` column; `{}` when there are none. */
  options: unknown;
}

/**
 * One kind of credential the CA accepts (smallstep's `provisioner.Interface`, one row per type in
 * the registry). The authority only asks it: which names a credential grants and whether it is
 * spent; every rule that belongs to the credential (algorithms, lifetime, which claim names what)
 * lives in the type, so a type whose tokens break the one-time token's rules (a Kubernetes
 * service-account token: RS256, an hour long, reused) is a new row, not a new `if`.
 */
export interface ProvisionerType<Config = unknown> {
  /** Stored in the `type` column and given to `--type`. */
  readonly type: string;
  /** How messages name it: `JWK`, `ACME`. */
  readonly label: string;
  /** One line for the CLI's usage: what its credential is. */
  readonly summary: string;
  /**
   * Checks what a new provisioner of this type is made of (its key, its options) and returns it
   * parsed; refuses with `badProvisionerOptions` (or the type's own error) what it cannot use.
   */
  parse(material: ProvisionerMaterial): Config;
  /**
   * The claims its credentials always offer a template, when that set is fixed (a service-account
   * token's namespace, service account and pod), so a template naming any other is refused at
   * start-up instead of failing every issuance. Absent: the claims vary by token (JWK, OIDC).
   */
  readonly templateClaims?: readonly string[];
  /** Whether each credential is spent on use, so a replay is refused (a one-time token is). */
  readonly singleUse: boolean;
  /** Whether its certificates renew over mutual TLS when the policy does not say (`mtlsRenewal`). */
  readonly mtlsRenewalByDefault: boolean;
  /** What a holder does instead of renewing over mTLS, after its lineage aged out. */
  readonly authenticateAgain: string;
  /**
   * Absent for a type that takes no tokens (ACME: its front door proves names by challenges).
   * `algorithms` are the JWS algorithms its tokens may be signed with.
   */
  readonly tokens?: {
    algorithms: readonly string[];
    create(deps: TokenAuthorizerDeps): TokenAuthorizer;
    /**
     * For a type whose tokens come from someone else (a cluster, an IdP), `iss` is theirs, not a
     * provisioner's name: the audience this row wants if it takes tokens from `iss`, else null.
     * Absent: the token's `iss` is the provisioner's name (JWK).
     */
    identifies?(row: ProvisionerRow, iss: string): { audience: string } | null;
  };
}
