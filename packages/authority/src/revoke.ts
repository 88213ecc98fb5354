import { normalizeSerial, reasonCode, reasonName, type RevocationReason } from '@shortleaf/pki';
import { StoreError } from '@shortleaf/store';
import { AuthorityError } from './errors.js';
import { NO_TELEMETRY, type AuthorityStore, type Clock, type Logger, type Telemetry } from './ports.js';

export interface RevocationResult {
  serial: string;
  revokedAt: Date;
  reason: RevocationReason;
  /** True when the certificate was already revoked: the first time and reason stand. */
  alreadyRevoked: boolean;
}

/** Checks a reason name from a request: RFC 5280 names only, never removeFromCRL. */
export function parseReason(reason: unknown): RevocationReason {
  if (reason === undefined || reason === null) return 'unspecified';
  if (typeof reason !== 'string') throw new AuthorityError('badRevocationReason', 'reason must be a string such as "keyCompromise"');
  try {
    return reasonName(reasonCode(reason));
  } catch (cause) {
    throw new AuthorityError('badRevocationReason', (cause as Error).message, { cause });
  }
}

/**
 * Revokes a certificate: records it durably (first revocation wins), then tells the listeners
 * (the OCSP responder re-signs at once, the CRL publisher schedules a coalesced rebuild). The
 * caller never waits for a CRL.
 */
export function createRevoker(opts: { store: AuthorityStore; clock: Clock; logger: Logger; onRevoked: (serial: string) => Promise<void> | void; telemetry?: Pick<Telemetry, 'revoked'> }) {
  const telemetry = opts.telemetry ?? NO_TELEMETRY;
  return async function revoke(input: { serial: unknown; reason: unknown; actor: string; requester: string; tokenUse?: { provisioner: string; jti: string; expiresAt: Date } }): Promise<RevocationResult> {
    if (typeof input.serial !== 'string') throw new AuthorityError('certificateNotFound', 'serial must be a hexadecimal string');
    let serial: string;
    try {
      serial = normalizeSerial(input.serial);
    } catch (cause) {
      throw new AuthorityError('certificateNotFound', (cause as Error).message, { cause });
    }
    const reason = parseReason(input.reason);
    const now = new Date(Math.floor(opts.clock.now().getTime() / 1000) * 1000);
    let outcome;
    try {
      outcome = await opts.store.revocations.revoke(
        { serial, revokedAt: now, reason, actor: input.actor },
        { at: now, action: 'revoke', actor: input.actor, serial, detail: { reason, requester: input.requester } },
        input.tokenUse,
      );
    } catch (cause) {
      if (cause instanceof StoreError && cause.code === 'tokenReplayed') throw new AuthorityError('tokenReplayed', 'this token has already been used; tokens are single-use', { cause });
      if (cause instanceof StoreError && cause.code === 'notFound') throw new AuthorityError('certificateNotFound', `no certificate with serial ${serial} was issued here`, { cause });
      if (cause instanceof StoreError && cause.code === 'storageUnavailable') throw new AuthorityError('storageUnavailable', 'the certificate store is unavailable; nothing was revoked', { cause });
      throw cause;
    }
    const result: RevocationResult = { serial, revokedAt: outcome.record.revokedAt, reason: outcome.record.reason as RevocationReason, alreadyRevoked: outcome.alreadyRevoked };
    if (!outcome.alreadyRevoked) {
      opts.logger.info('certificate_revoked', { serial, reason, actor: input.actor });
      telemetry.revoked(reason);
      await opts.onRevoked(serial);
    }
    return result;
  };
}

export type Revoke = ReturnType<typeof createRevoker>;
