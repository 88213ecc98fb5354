import type { Clock, Logger } from '@shortleaf/authority';
import { AcmeError, type AcmeProblem } from './errors.js';
import { ACME_ERROR_PREFIX } from './errors.js';
import { NO_ACME_TELEMETRY, type AcmeStore, type AcmeTelemetry, type AuthorizationRecord, type ChallengeRecord } from './ports.js';
import type { Validator } from './validators/index.js';

export interface ValidationRunner {
  /** Queues validation of a challenge that was just moved to `processing`. */
  start(challenge: ChallengeRecord, authorization: AuthorizationRecord, keyAuthorization: string): void;
  /** Whether this process is validating that challenge (queued or running). */
  has(challengeId: string): boolean;
  /** Resolves once every queued and running validation has recorded its outcome. */
  drain(): Promise<void>;
}

/**
 * Runs challenge validations in the background (RFC 8555 §7.5.1: the client polls), at most
 * `concurrency` at a time so a burst of orders cannot open unbounded outbound connections. Each
 * outcome is recorded on the challenge and its authorization in one write.
 */
export function createValidationRunner(opts: { store: AcmeStore; validate: Validator; clock: Clock; logger: Logger; authorizationLifetimeMs: number; concurrency?: number; telemetry?: AcmeTelemetry }): ValidationRunner {
  const concurrency = opts.concurrency ?? 16;
  const telemetry = opts.telemetry ?? NO_ACME_TELEMETRY;
  const queue: Array<() => Promise<void>> = [];
  const running = new Set<Promise<void>>();
  const pending = new Set<string>();

  const pump = () => {
    while (running.size < concurrency && queue.length > 0) {
      const job = queue.shift()!;
      const p = job().finally(() => {
        running.delete(p);
        pump();
      });
      running.add(p);
    }
  };

  async function validate(challenge: ChallengeRecord, authorization: AuthorizationRecord, keyAuthorization: string): Promise<void> {
    // A restart's leftover may be resumed by a read that raced its own completion: check first.
    if ((await opts.store.getChallenge(challenge.id))?.status !== 'processing') return;
    let error: AcmeProblem | null = null;
    try {
      await opts.validate({ type: challenge.type, identifier: authorization.identifier, token: challenge.token, keyAuthorization });
    } catch (cause) {
      const err = cause instanceof AcmeError ? cause : new AcmeError('serverInternal', 'validation failed unexpectedly', { cause });
      if (!(cause instanceof AcmeError)) opts.logger.error('acme_validation_error', { challenge: challenge.id, error: (cause as Error).message });
      error = { ...err.toProblem(), status: err.status };
    }
    const at = opts.clock.now();
    try {
      if (error === null) await opts.store.finishChallenge(challenge.id, { valid: true, at, authorizationExpires: new Date(at.getTime() + opts.authorizationLifetimeMs) });
      else await opts.store.finishChallenge(challenge.id, { valid: false, at, error });
      if (error !== null) telemetry.validationFailed(challenge.type, error.type.startsWith(ACME_ERROR_PREFIX) ? error.type.slice(ACME_ERROR_PREFIX.length) : error.type);
      opts.logger.info('acme_validation', { challenge: challenge.id, type: challenge.type, identifier: authorization.identifier.value, valid: error === null, ...(error === null ? {} : { problem: error.type }) });
    } catch (cause) {
      opts.logger.error('acme_validation_record_failed', { challenge: challenge.id, error: (cause as Error).message });
    }
  }

  return {
    start(challenge, authorization, keyAuthorization) {
      if (pending.has(challenge.id)) return;
      pending.add(challenge.id);
      queue.push(() => validate(challenge, authorization, keyAuthorization).finally(() => pending.delete(challenge.id)));
      pump();
    },
    has: (challengeId) => pending.has(challengeId),
    async drain() {
      while (running.size > 0 || queue.length > 0) await Promise.allSettled([...running]);
    },
  };
}
