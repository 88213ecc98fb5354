import { StoreError } from '../contracts/errors.js';

// What a node-postgres failure means to the store: a constraint the caller tripped (turned into
// its own StoreError by the repository that knows which), a database that cannot be reached or
// cannot serve right now (storageUnavailable: the same call may succeed in a moment or on another
// instance), or anything else (a bug, left as it is so it is not disguised as an outage).

/** The SQLSTATE of an error the server sent (`23505`, …), or undefined for other failures (`EPIPE` too). */
export function sqlState(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err) || !('severity' in err)) return undefined;
  const code = (err as { code: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** The constraint a violation names (`certificates_pkey`, …), if PostgreSQL said. */
export function constraintName(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('constraint' in err)) return undefined;
  const constraint = (err as { constraint: unknown }).constraint;
  return typeof constraint === 'string' ? constraint : undefined;
}

/** True for a PRIMARY KEY or UNIQUE violation, optionally of one named constraint. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  return sqlState(err) === '23505' && (constraint === undefined || constraintName(err) === constraint);
}

/** True for a FOREIGN KEY violation, optionally of one named constraint. */
export function isForeignKeyViolation(err: unknown, constraint?: string): boolean {
  return sqlState(err) === '23503' && (constraint === undefined || constraintName(err) === constraint);
}

/** A serialization failure or deadlock: the transaction lost a race and may simply be run again. */
export function isRetryable(err: unknown): boolean {
  const state = sqlState(err);
  return state === '40001' || state === '40P01';
}

// SQLSTATEs of a server that is going away, starting, out of resources or (after a failover to a
// standby) read-only: nothing about the request, everything about the moment.
const unavailableStates = new Map<string, string>([
  ['57P01', 'the server is shutting down'],
  ['57P02', 'the server crashed'],
  ['57P03', 'the server is not accepting connections yet'],
  ['25006', 'the server is read-only (a standby)'],
  ['40001', 'serialization failures persisted'],
  ['40P01', 'deadlocks persisted'],
]);
const unavailableClasses = new Map<string, string>([
  ['08', 'connection failure'],
  ['53', 'the server is out of resources'],
]);

// Socket-level codes Node puts on the error (an AggregateError when `localhost` has two addresses).
const unavailableSocketCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

// Messages node-postgres and pg-pool give failures of the connection rather than of a statement.
const unavailableMessages = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
  'Query read timeout',
];

/**
 * Why `err` means the database cannot serve now, in words that carry no parameter value (those
 * may be serials, token ids or worse), or undefined when it means something else.
 */
export function unavailableReason(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const state = sqlState(err);
  if (state !== undefined) return unavailableStates.get(state) ?? unavailableClasses.get(state.slice(0, 2));
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && unavailableSocketCodes.has(code)) return code;
  const message = err instanceof Error ? err.message : '';
  return unavailableMessages.find((m) => message.includes(m));
}

/**
 * Turns a failure to reach or use the database into `StoreError('storageUnavailable')` (the
 * original kept as `cause`, for the log only); returns anything else unchanged.
 */
export function toStorageError(err: unknown): unknown {
  if (err instanceof StoreError) return err;
  const reason = unavailableReason(err);
  if (reason === undefined) return err;
  return new StoreError('storageUnavailable', `PostgreSQL unavailable: ${reason}`, { cause: err });
}
