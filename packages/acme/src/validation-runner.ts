import { StoreError } from '@shortleaf/store/contracts';
import type { Clock, Logger } from '@shortleaf/authority';
import { AcmeError, type AcmeProblem } from './errors.js';
import { ACME_ERROR_PREFIX } from './errors.js';
import {
  NO_ACME_TELEMETRY,
  type AcmeStore,
  type AcmeTelemetry,
  type AuthorizationRecord,
  type ChallengeRecord,
} from './ports.js';
import type { Validator } from './validators/index.js';

/**
 * How much validation work this process takes on, and how it is shared (`acme.validation` in the
 * CA's configuration). Pending means queued or running.
 */
export interface ValidationLimits {
  /** Validations running at once. */
  concurrency: number;
  /** Validations of one account running at once, so one account never holds every slot. */
  concurrencyPerAccount: number;
  /** Validations one account may have pending; one more is refused with `rateLimited`. */
  maxPendingPerAccount: number;
  /** Validations all accounts of one provisioner may have pending together. */
  maxPendingPerProvisioner: number;
}

/**
 * One order of `limits.maxNames` (100) identifiers can have every challenge answered at once;
 * four running per account leave twelve of the sixteen slots to everyone else.
 */
export const DEFAULT_VALIDATION_LIMITS: ValidationLimits = {
  concurrency: 16,
  concurrencyPerAccount: 4,
  maxPendingPerAccount: 100,
  maxPendingPerProvisioner: 1_000,
};

/** Whose validation it is: what the limits count by. */
export interface ValidationOwner {
  account: string;
  provisioner: string;
}

/** Room for one validation, held between the limit check and the challenge's move to `processing`. */
export interface ValidationReservation {
  /** Queues validation of the challenge just moved to `processing`; the room is used by it. */
  start(challenge: ChallengeRecord, authorization: AuthorizationRecord, keyAuthorization: string): void;
  /** Gives the room back unused (the challenge was not moved to `processing`). */
  release(): void;
}

export interface ValidationRunner {
  /**
   * Reserves room for one more validation of `owner`, or throws `rateLimited` (with Retry-After)
   * when its account or its provisioner already has its limit pending. Nothing is changed then.
   */
  reserve(owner: ValidationOwner): ValidationReservation;
  /** Queues a challenge left `processing` by a restart; counted like any other, never refused (it was admitted once). */
  resume(
    challenge: ChallengeRecord,
    authorization: AuthorizationRecord,
    keyAuthorization: string,
    owner: ValidationOwner,
  ): void;
  /** Whether this process is validating that challenge (queued or running). */
  has(challengeId: string): boolean;
  /** Resolves once every queued and running validation has recorded its outcome. */
  drain(): Promise<void>;
}

/** A validation waits at most `acme.validation.timeout` (10 s by default) once it runs: a fair hint for a refused client. */
const RETRY_AFTER_S = 10;

type Job = () => Promise<void>;

/** Checks limits at construction: a zero or a per-account share above the whole is a configuration mistake. */
function checkLimits(limits: ValidationLimits): void {
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1)
      throw new Error(`acme.validation.${key} must be a positive integer, not ${value}`);
  }
  if (limits.concurrencyPerAccount > limits.concurrency)
    throw new Error('acme.validation.concurrencyPerAccount must not exceed acme.validation.concurrency');
}

/**
 * Runs challenge validations in the background (RFC 8555 §7.5.1: the client polls). Each outcome
 * is recorded on the challenge and its authorization in one write.
 *
 * A validation can take the whole timeout whatever we do (a listener that accepts and never
 * answers), so one account must not be able to fill the queue or the slots: pending work is
 * bounded per account and per provisioner (refused up front, before the challenge changes), at
 * most `concurrencyPerAccount` of an account's validations run at once, and free slots go to
 * accounts in turn (round-robin), so a newcomer waits for at most one validation per account
 * ahead of it, not for a backlog. The limits hold per process.
 */
export function createValidationRunner(opts: {
  store: AcmeStore;
  validate: Validator;
  clock: Clock;
  logger: Logger;
  authorizationLifetimeMs: number;
  limits?: Partial<ValidationLimits>;
  telemetry?: AcmeTelemetry;
}): ValidationRunner {
  const limits: ValidationLimits = { ...DEFAULT_VALIDATION_LIMITS, ...opts.limits };
  checkLimits(limits);
  const telemetry = opts.telemetry ?? NO_ACME_TELEMETRY;
  /** Queued jobs per account; the map's order is the round-robin order (an account served moves to the back). */
  const queues = new Map<string, Job[]>();
  const runningPerAccount = new Map<string, number>();
  const running = new Set<Promise<void>>();
  const pendingChallenges = new Set<string>();
  const pendingPerAccount = new Map<string, number>();
  const pendingPerProvisioner = new Map<string, number>();

  const bump = (map: Map<string, number>, key: string, by: number) => {
    const next = (map.get(key) ?? 0) + by;
    if (next === 0) map.delete(key);
    else map.set(key, next);
  };
  const hold = (owner: ValidationOwner, by: 1 | -1) => {
    bump(pendingPerAccount, owner.account, by);
    bump(pendingPerProvisioner, owner.provisioner, by);
  };

  const pump = () => {
    for (let progressed = true; progressed && running.size < limits.concurrency;) {
      progressed = false;
      for (const [account, jobs] of [...queues]) {
        if (running.size >= limits.concurrency) break;
        if ((runningPerAccount.get(account) ?? 0) >= limits.concurrencyPerAccount) continue;
        const job = jobs.shift()!;
        queues.delete(account);
        if (jobs.length > 0) queues.set(account, jobs);
        bump(runningPerAccount, account, 1);
        const p: Promise<void> = job().finally(() => {
          running.delete(p);
          bump(runningPerAccount, account, -1);
          pump();
        });
        running.add(p);
        progressed = true;
      }
    }
  };

  async function validate(
    challenge: ChallengeRecord,
    authorization: AuthorizationRecord,
    keyAuthorization: string,
  ): Promise<void> {
    // A restart's leftover may be resumed by a read that raced its own completion: check first.
    // The database may be down (a restart): the challenge stays processing, and the client's next
    // poll of its authorization resumes it. A rejection here would go unhandled and end the process.
    try {
      if ((await opts.store.getChallenge(challenge.id))?.status !== 'processing') return;
    } catch (cause) {
      opts.logger.error('acme_validation_record_failed', { challenge: challenge.id, error: (cause as Error).message });
      return;
    }
    let error: AcmeProblem | null = null;
    let detail: string | undefined;
    try {
      await opts.validate({
        type: challenge.type,
        identifier: authorization.identifier,
        token: challenge.token,
        keyAuthorization,
      });
    } catch (cause) {
      const err =
        cause instanceof AcmeError
          ? cause
          : new AcmeError('serverInternal', 'validation failed unexpectedly', { cause });
      if (!(cause instanceof AcmeError))
        opts.logger.error('acme_validation_error', { challenge: challenge.id, error: (cause as Error).message });
      // What the client is not told (where a redirect led, what refused it) is for the operator.
      if (err.cause instanceof Error) detail = err.cause.message;
      error = { ...err.toProblem(), status: err.status };
    }
    const at = opts.clock.now();
    try {
      if (error === null)
        await opts.store.finishChallenge(challenge.id, {
          valid: true,
          at,
          authorizationExpires: new Date(at.getTime() + opts.authorizationLifetimeMs),
        });
      else await opts.store.finishChallenge(challenge.id, { valid: false, at, error });
      if (error !== null)
        telemetry.validationFailed(
          challenge.type,
          error.type.startsWith(ACME_ERROR_PREFIX) ? error.type.slice(ACME_ERROR_PREFIX.length) : error.type,
        );
      opts.logger.info('acme_validation', {
        challenge: challenge.id,
        type: challenge.type,
        identifier: authorization.identifier.value,
        valid: error === null,
        ...(error === null ? {} : { problem: error.type }),
        ...(detail === undefined ? {} : { detail }),
      });
    } catch (cause) {
      // Several instances: a client polling another instance made it resume the same challenge,
      // and that validation recorded its outcome first. The first outcome stands; nothing failed.
      if (cause instanceof StoreError && cause.code === 'conflict')
        opts.logger.info('acme_validation_settled_elsewhere', { challenge: challenge.id });
      else
        opts.logger.error('acme_validation_record_failed', {
          challenge: challenge.id,
          error: (cause as Error).message,
        });
    }
  }

  /** Queues one validation whose room is already held; the room is given back when it ends. */
  const enqueue = (
    challenge: ChallengeRecord,
    authorization: AuthorizationRecord,
    keyAuthorization: string,
    owner: ValidationOwner,
  ) => {
    pendingChallenges.add(challenge.id);
    const job: Job = () =>
      validate(challenge, authorization, keyAuthorization).finally(() => {
        pendingChallenges.delete(challenge.id);
        hold(owner, -1);
      });
    const jobs = queues.get(owner.account);
    if (jobs === undefined) queues.set(owner.account, [job]);
    else jobs.push(job);
    pump();
  };

  return {
    reserve(owner) {
      const account = pendingPerAccount.get(owner.account) ?? 0;
      if (account >= limits.maxPendingPerAccount) {
        throw new AcmeError(
          'rateLimited',
          `this account has ${account} challenge validations pending; the limit is ${limits.maxPendingPerAccount} (acme.validation.maxPendingPerAccount). Retry once some have finished`,
          {
            headers: { 'Retry-After': String(RETRY_AFTER_S) },
          },
        );
      }
      const provisioner = pendingPerProvisioner.get(owner.provisioner) ?? 0;
      if (provisioner >= limits.maxPendingPerProvisioner) {
        throw new AcmeError(
          'rateLimited',
          `the provisioner ${owner.provisioner} has ${provisioner} challenge validations pending; the limit is ${limits.maxPendingPerProvisioner} (acme.validation.maxPendingPerProvisioner). Retry shortly`,
          {
            headers: { 'Retry-After': String(RETRY_AFTER_S) },
          },
        );
      }
      hold(owner, 1);
      let used = false;
      return {
        start(challenge, authorization, keyAuthorization) {
          if (used) return;
          used = true;
          if (pendingChallenges.has(challenge.id)) hold(owner, -1);
          else enqueue(challenge, authorization, keyAuthorization, owner);
        },
        release() {
          if (used) return;
          used = true;
          hold(owner, -1);
        },
      };
    },
    resume(challenge, authorization, keyAuthorization, owner) {
      if (pendingChallenges.has(challenge.id)) return;
      hold(owner, 1);
      enqueue(challenge, authorization, keyAuthorization, owner);
    },
    has: (challengeId) => pendingChallenges.has(challengeId),
    async drain() {
      while (running.size > 0 || queues.size > 0) await Promise.allSettled([...running]);
    },
  };
}
