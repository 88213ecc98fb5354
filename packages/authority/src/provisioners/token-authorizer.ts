import { decodeJwt } from 'jose';
import { AuthorityError } from '../errors.js';
import type { ProvisionerRow } from '../ports.js';
import { readTokenHeader } from '../token.js';
import type { ProvisionerRegistry } from './registry.js';
import type { RevokeAuthorization, SignAuthorization, TokenAuthorizer } from './types.js';

/** A credential's grant, with the provisioner that made it. */
export type AuthorizedBy<T> = T & { row: ProvisionerRow };

/**
 * How the authority turns a token into a grant without knowing any provisioner type: read the
 * token's algorithm and issuer (untrusted), refuse an algorithm no type takes, find the provisioner
 * the issuer names, and let its type verify the rest. Each type's verifier is built once, on first
 * use, so it can keep imported keys between requests.
 */
export function createTokenAuthorizer(deps: {
  registry: ProvisionerRegistry;
  getProvisioner(name: string): Promise<ProvisionerRow | null>;
  /** Every provisioner: where a token whose `iss` is a cluster's or an IdP's finds its row. */
  listProvisioners?(): Promise<ProvisionerRow[]>;
  now(): Date;
  maxNames: number;
}) {
  const built = new Map<string, TokenAuthorizer>();

  /**
   * The provisioner that takes tokens from `iss` (a cluster, an IdP); when several do (one IdP,
   * several client ids), the one whose audience the token names. The one provisioner of an
   * issuer is returned whatever the token's audience, so a wrong audience is refused as such.
   */
  async function byIssuer(token: string, iss: string): Promise<ProvisionerRow | null> {
    if (deps.listProvisioners === undefined) return null;
    const withIssuer = (await deps.listProvisioners()).flatMap((row) => {
      const wants = deps.registry.find(row.type)?.tokens?.identifies?.(row, iss) ?? null;
      return wants === null ? [] : [{ row, audience: wants.audience }];
    });
    if (withIssuer.length <= 1) return withIssuer[0]?.row ?? null;
    const { aud } = decodeJwt(token);
    const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    const rows = withIssuer.filter((c) => audiences.includes(c.audience)).map((c) => c.row);
    if (rows.length === 0)
      throw new AuthorityError(
        'tokenAudience',
        `the token's audience is none of those the provisioners for ${JSON.stringify(iss)} take`,
      );
    if (rows.length > 1)
      throw new AuthorityError(
        'unknownProvisioner',
        `provisioners ${rows.map((r) => r.name).join(', ')} all take tokens from ${JSON.stringify(iss)} for this audience; give each its own audience`,
      );
    return rows[0] ?? null;
  }

  async function locate(token: unknown) {
    const header = readTokenHeader(token, deps.registry.tokenAlgorithms);
    let row = await deps.getProvisioner(header.iss);
    // A type whose tokens carry someone else's `iss` is never found by its own name.
    if (row !== null && deps.registry.find(row.type)?.tokens?.identifies !== undefined) row = null;
    row ??= await byIssuer(header.token, header.iss);
    // A row of a type this build does not know (written by a newer version) takes no tokens here.
    const type = row === null ? undefined : deps.registry.find(row.type);
    if (row === null || type?.tokens === undefined) {
      throw new AuthorityError(
        'unknownProvisioner',
        `no ${deps.registry.tokenLabels} provisioner named ${JSON.stringify(header.iss)}`,
      );
    }
    if (!type.tokens.algorithms.includes(header.alg)) {
      throw new AuthorityError(
        'tokenMalformed',
        `token algorithm ${JSON.stringify(header.alg)} is not allowed for ${type.label} provisioner ${row.name} (use ${type.tokens.algorithms.join(' or ')})`,
      );
    }
    let authorizer = built.get(type.type);
    if (authorizer === undefined) {
      authorizer = type.tokens.create({ now: deps.now, maxNames: deps.maxNames });
      built.set(type.type, authorizer);
    }
    return { header, row, type, authorizer };
  }

  /** A type that says its credentials are single-use must name the use to spend; anything else is its bug. */
  function spent<T extends { use: unknown }>(singleUse: boolean, grant: T): T {
    if (singleUse && grant.use === null)
      throw new AuthorityError(
        'internal',
        'the provisioner granted a single-use credential without a use to spend; nothing was issued',
      );
    return grant;
  }

  return {
    /** The names, template claims and one-time use a sign token grants. */
    async authorizeSign(token: unknown, audiences: readonly string[]): Promise<AuthorizedBy<SignAuthorization>> {
      const { header, row, type, authorizer } = await locate(token);
      return { ...spent(type.singleUse, await authorizer.authorizeSign(header, row, audiences)), row };
    },
    /** The serial and one-time use a revoke token grants. */
    async authorizeRevoke(token: unknown, audiences: readonly string[]): Promise<AuthorizedBy<RevokeAuthorization>> {
      const { header, row, type, authorizer } = await locate(token);
      return { ...spent(type.singleUse, await authorizer.authorizeRevoke(header, row, audiences)), row };
    },
  };
}
