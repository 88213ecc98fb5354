import type { AcmeOptions, AcmeStore } from '@shortleaf/acme';
import type {
  AuthorityStore,
  Clock,
  KeySealer,
  Logger,
  PolicyDocument,
  Revoke,
  RevocationResult,
} from '@shortleaf/authority';
import { addAcmeProvisioner, addJwkProvisioner, addProvisioner, type NewProvisionerInput } from '../provisioners.js';
import { addEabKey, listEabKeys, type EabKeySummary } from './eab.js';
import type { Operator } from './operator.js';
import { revokeAsOperator } from './revoke.js';

export interface AdminDeps {
  store: AuthorityStore & { acme: AcmeStore };
  clock: Clock;
  random(n: number): Uint8Array;
  logger: Logger;
  /**
   * Records revocations: the server's own revoker inside `serve` (OCSP and the CRL follow at once),
   * `recordingRevoker` in a CLI process (a running server picks the row up by watching).
   */
  revoke: Revoke;
  /** Seals EAB HMAC keys; only `addEabKey` needs it, so verbs that never unseal ask no passphrase. */
  sealer?: KeySealer;
}

/** The operator's actions, as the CLI and the console call them. */
export interface Admin {
  /**
   * Any registered type from what it is made of (its registry row parses and refuses the key and
   * options): the entry point for a caller that brings its own material, as the console will.
   */
  addProvisioner(operator: Operator, input: NewProvisionerInput): Promise<void>;
  /** A JWK provisioner with a fresh key pair; the private half is written to `keyOut` (0600) before anything is recorded. */
  addJwkProvisioner(
    operator: Operator,
    opts: { name: string; keyOut: string; policy: PolicyDocument; kty?: 'EC' | 'OKP' },
  ): Promise<{ kid: string }>;
  addAcmeProvisioner(
    operator: Operator,
    opts: { name: string; policy: PolicyDocument; options: Partial<AcmeOptions> },
  ): Promise<void>;
  revoke(
    operator: Operator,
    req: { serial: string; reason: string | undefined; requester: string },
  ): Promise<RevocationResult>;
  addEabKey(operator: Operator, provisioner: string): Promise<{ kid: string; hmacKey: string }>;
  listEabKeys(operator: Operator, provisioner: string): Promise<EabKeySummary[]>;
}

/**
 * The admin actions (add a provisioner, revoke as the operator, EAB keys) behind one explicit
 * operator identity, out of the CLI's command code so the console (issue 16) calls the same code.
 * Nothing here prints, prompts or reads the environment: callers say who acts and show the result.
 * Each action is logged (info) with its operator; the revocation is also audited as
 * `operator:NAME`, as it always was.
 */
export function createAdmin(deps: AdminDeps): Admin {
  const { store, logger } = deps;
  const done = (action: string, operator: Operator, fields: Record<string, unknown>) =>
    logger.info(`admin_${action}`, { operator: operator.name, ...fields });
  return {
    async addProvisioner(operator, input) {
      await addProvisioner(store, input);
      done('provisioner_added', operator, { name: input.name, type: input.type });
    },
    async addJwkProvisioner(operator, opts) {
      const result = await addJwkProvisioner(store, opts);
      done('provisioner_added', operator, { name: opts.name, type: 'jwk', kid: result.kid });
      return result;
    },
    async addAcmeProvisioner(operator, opts) {
      await addAcmeProvisioner(store, opts);
      done('provisioner_added', operator, { name: opts.name, type: 'acme' });
    },
    async revoke(operator, req) {
      const result = await revokeAsOperator(deps.revoke, operator, req);
      done('revoked', operator, { serial: result.serial, reason: result.reason, also: result.also.length });
      return result;
    },
    async addEabKey(operator, provisioner) {
      if (deps.sealer === undefined) throw new Error('adding an EAB key needs the data passphrase (a sealer)');
      const result = await addEabKey(
        { store, sealer: deps.sealer, clock: deps.clock, random: deps.random },
        provisioner,
      );
      done('eab_key_added', operator, { provisioner, kid: result.kid });
      return result;
    },
    listEabKeys: (_operator, provisioner) => listEabKeys(store, provisioner),
  };
}
