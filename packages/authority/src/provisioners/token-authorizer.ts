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
  now(): Date;
  maxNames: number;
}) {
  const built = new Map<string, TokenAuthorizer>();

  async function locate(token: unknown) {
    const header = readTokenHeader(token, deps.registry.tokenAlgorithms);
    const row = await deps.getProvisioner(header.iss);
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
