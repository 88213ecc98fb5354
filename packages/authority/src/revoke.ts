import { normalizeSerial, reasonCode, reasonName, type RevocationReason } from '@shortleaf/pki';
import { AuthorityError } from './errors.js';
import {
  NO_TELEMETRY,
  type AuthorityStore,
  type Clock,
  type Logger,
  type RevocationReach,
  type Telemetry,
} from './ports.js';
import { fromStoreError } from './store-errors.js';

export interface RevocationResult {
  serial: string;
  revokedAt: Date;
  reason: RevocationReason;
  /** True when nothing changed: the certificate was already revoked and the first time and reason stand. */
  alreadyRevoked: boolean;
  /** The reason keyCompromise replaced, when it did (the time of the first revocation is kept). */
  previousReason?: RevocationReason;
  /** Other certificates this revocation reached (its lineage, the same key): revoked now, or moved to keyCompromise. */
  also: string[];
  /** The key is now blocked for any new certificate (keyCompromise from someone who proved they hold it). */
  keyBlocked: boolean;
}

/**
 * How far each reason reaches beyond the certificate named. A lineage is one holder renewing one
 * identity, so a reason about the holder or its key is about every certificate it renewed into:
 * - keyCompromise: the key, not the serial. Every live certificate with that key, every lineage
 *   one of them belongs to (whoever holds the key could have renewed it under a new key), and the
 *   key blocked for good (Boulder's blockedKeys). That reach beyond the lineage needs a revoker
 *   who proved they hold the key, or the operator (`keyProven`): a CSR is no secret, so anyone
 *   could get a certificate for another's public key and "revoke" it to block theirs. Let's
 *   Encrypt asks the same (keyCompromise by the certificate's key). Without it, the reason still
 *   reaches the lineage.
 * - cessationOfOperation, affiliationChanged, privilegeWithdrawn: the holder stopped, or lost the
 *   right to these names; its renewals carry the same names and the same right, so the lineage.
 * - superseded: the certificate was replaced, and its renewal IS the replacement: that one only.
 * - unspecified and the rest: only the certificate named, as before; revoking an old certificate
 *   after renewing must not take the current one with it.
 */
export const REVOCATION_REACH: Readonly<Record<RevocationReason, RevocationReach>> = {
  unspecified: { lineage: false, key: false },
  keyCompromise: { lineage: true, key: true },
  cACompromise: { lineage: false, key: false },
  affiliationChanged: { lineage: true, key: false },
  superseded: { lineage: false, key: false },
  cessationOfOperation: { lineage: true, key: false },
  certificateHold: { lineage: false, key: false },
  privilegeWithdrawn: { lineage: true, key: false },
  aACompromise: { lineage: false, key: false },
};

/** Checks a reason name from a request: RFC 5280 names only, never removeFromCRL. */
export function parseReason(reason: unknown): RevocationReason {
  if (reason === undefined || reason === null) return 'unspecified';
  if (typeof reason !== 'string')
    throw new AuthorityError('badRevocationReason', 'reason must be a string such as "keyCompromise"');
  try {
    return reasonName(reasonCode(reason));
  } catch (cause) {
    throw new AuthorityError('badRevocationReason', (cause as Error).message, { cause });
  }
}

/**
 * Revokes a certificate, and what its reason reaches (REVOCATION_REACH), in one transaction:
 * records it durably (first revocation wins, but keyCompromise replaces an earlier reason), then
 * tells the listeners of each certificate that changed (the OCSP responder re-signs at once, the
 * CRL publisher schedules a coalesced rebuild). The caller never waits for a CRL.
 */
export function createRevoker(opts: {
  store: AuthorityStore;
  clock: Clock;
  logger: Logger;
  onRevoked: (serial: string) => Promise<void> | void;
  telemetry?: Pick<Telemetry, 'revoked'>;
}) {
  const telemetry = opts.telemetry ?? NO_TELEMETRY;
  return async function revoke(input: {
    serial: unknown;
    reason: unknown;
    actor: string;
    requester: string;
    tokenUse?: { provisioner: string; jti: string; expiresAt: Date };
    /** The revoker proved it holds the certificate's key (mTLS, an ACME request signed with it) or is the operator. */
    keyProven?: boolean;
  }): Promise<RevocationResult> {
    if (typeof input.serial !== 'string')
      throw new AuthorityError('certificateNotFound', 'serial must be a hexadecimal string');
    let serial: string;
    try {
      serial = normalizeSerial(input.serial);
    } catch (cause) {
      throw new AuthorityError('certificateNotFound', (cause as Error).message, { cause });
    }
    const reason = parseReason(input.reason);
    const now = new Date(Math.floor(opts.clock.now().getTime() / 1000) * 1000);
    const reach = input.keyProven === true ? REVOCATION_REACH[reason] : { ...REVOCATION_REACH[reason], key: false };
    let outcome;
    try {
      outcome = await opts.store.revocations.revoke(
        { serial, revokedAt: now, reason, actor: input.actor },
        { at: now, action: 'revoke', actor: input.actor, serial, detail: { reason, requester: input.requester } },
        input.tokenUse,
        reach,
      );
    } catch (cause) {
      throw fromStoreError(cause, { action: 'revoke', serial });
    }
    const result: RevocationResult = {
      serial,
      revokedAt: outcome.record.revokedAt,
      reason: outcome.record.reason as RevocationReason,
      alreadyRevoked: outcome.alreadyRevoked,
      ...(outcome.previousReason === undefined ? {} : { previousReason: outcome.previousReason as RevocationReason }),
      also: outcome.also.map((r) => r.serial),
      keyBlocked: reach.key && !outcome.alreadyRevoked,
    };
    if (!outcome.alreadyRevoked) {
      opts.logger.info('certificate_revoked', {
        serial,
        reason,
        actor: input.actor,
        ...(outcome.previousReason === undefined ? {} : { previousReason: outcome.previousReason }),
        ...(result.also.length === 0 ? {} : { reached: result.also }),
      });
      for (const changed of [serial, ...result.also]) {
        telemetry.revoked(reason);
        await opts.onRevoked(changed);
      }
    }
    return result;
  };
}

export type Revoke = ReturnType<typeof createRevoker>;
