import { AuthorityError } from '../errors.js';
import type { ProvisionerType } from './types.js';

/**
 * The provisioner types a CA knows, as a table with one lookup that throws on an unknown entry
 * (jose's `jws_algorithms.ts`), not `p.type === …` spread through the code. A stored row's type
 * is a plain string the registry validates, so a new type needs a row here and no migration.
 */
export interface ProvisionerRegistry {
  /** The type named, or `unknownProvisionerType`. */
  get(type: string): ProvisionerType;
  /** The type named, or undefined (a row written by a newer version of Shortleaf). */
  find(type: string): ProvisionerType | undefined;
  /** Every type, in the order given: for usage lines and `--type` messages. */
  readonly types: readonly ProvisionerType[];
  /** Every JWS algorithm some type's tokens may use: what a token is read with before its provisioner is known. */
  readonly tokenAlgorithms: readonly string[];
  /** The labels of the types that take tokens, as messages name them (`JWK`, later `JWK or Kubernetes`). */
  readonly tokenLabels: string;
}

export function createProvisionerRegistry(types: readonly ProvisionerType[]): ProvisionerRegistry {
  const table = new Map<string, ProvisionerType>();
  for (const t of types) {
    if (table.has(t.type)) throw new Error(`provisioner type ${t.type} is registered twice`);
    table.set(t.type, t);
  }
  const takingTokens = types.filter((t) => t.tokens !== undefined);
  return {
    get(type) {
      const found = table.get(type);
      if (found === undefined) {
        throw new AuthorityError(
          'unknownProvisionerType',
          `unknown provisioner type ${JSON.stringify(type)}; the types are ${types.map((t) => t.type).join(', ')}`,
        );
      }
      return found;
    },
    find: (type) => table.get(type),
    types,
    tokenAlgorithms: [...new Set(takingTokens.flatMap((t) => t.tokens?.algorithms ?? []))],
    tokenLabels: takingTokens.map((t) => t.label).join(' or '),
  };
}
