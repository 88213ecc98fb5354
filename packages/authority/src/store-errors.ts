import { StoreError, type StoreErrorCode } from '@shortleaf/store/contracts';
import { AuthorityError } from './errors.js';

/**
 * What the authority was writing when the store refused. A store code can mean two things: a
 * missing row at revocation is the caller's unknown serial, at issuance a bug.
 */
export type StoreWrite = { action: 'issue' } | { action: 'revoke'; serial: string };

type Translation = (err: StoreError, write: StoreWrite) => AuthorityError | null;

const NOTHING_DONE = { issue: 'nothing was issued', revoke: 'nothing was revoked' } as const;

/**
 * One row per store code, every code (a new one does not compile until it has a row): the
 * authority's refusal it becomes, or null where it cannot be the caller's doing, a bug or a
 * broken database, which goes out as an internal error with the store's error as cause.
 */
const FROM_STORE: { readonly [C in StoreErrorCode]: Translation } = {
  tokenReplayed: (err) =>
    new AuthorityError('tokenReplayed', 'this token has already been used; tokens are single-use', { cause: err }),
  storageUnavailable: (err, w) =>
    new AuthorityError('storageUnavailable', `the certificate store is unavailable; ${NOTHING_DONE[w.action]}`, {
      cause: err,
    }),
  keyBlocked: (err) =>
    new AuthorityError(
      'keyBlocked',
      'this public key was revoked for keyCompromise and is blocked for any new certificate; generate a new key',
      { cause: err },
    ),
  // The certificate a renewal starts from was revoked meanwhile; the store's message names it.
  revoked: (err, w) =>
    new AuthorityError('certificateRevoked', `${err.message}; ${NOTHING_DONE[w.action]}`, { cause: err }),
  notFound: (err, w) =>
    w.action === 'revoke'
      ? new AuthorityError('certificateNotFound', `no certificate with serial ${w.serial} was issued here`, {
          cause: err,
        })
      : null,
  // Issuance draws a new serial on a collision before it gets here; a fourth in a row is a bug.
  serialCollision: () => null,
  conflict: () => null,
  eabKeyUsed: () => null,
  migrationFailed: () => null,
  schemaTooNew: () => null,
  unsealFailed: () => null,
  notShortleafDatabase: () => null,
};

/**
 * The one translation of a store failure into the authority's terms, for every write the
 * authority makes (issue, revoke). Anything without a refusal of its own is internal: issuance
 * wraps it (`internal`, nothing was issued); revocation passes it on as it is, and the front
 * door logs it and answers a bare 500, as it always has.
 */
export function fromStoreError(cause: unknown, write: StoreWrite): unknown {
  const refusal = cause instanceof StoreError ? FROM_STORE[cause.code](cause, write) : null;
  if (refusal !== null) return refusal;
  return write.action === 'issue'
    ? new AuthorityError('internal', 'issuance failed; nothing was issued', { cause })
    : cause;
}

/**
 * Whether `err` is the certificate store being unavailable (a database restart or failover), as
 * the store raised it on a read or the authority translated it on a write: every front door
 * answers it as retriable (a 503 with Retry-After), never as an internal error.
 */
export function isStorageUnavailable(err: unknown): boolean {
  return (
    (err instanceof StoreError && err.code === 'storageUnavailable') ||
    (err instanceof AuthorityError && err.code === 'storageUnavailable')
  );
}
