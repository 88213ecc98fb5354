/** Stable codes callers switch on; the message is for people, the code is for code. */
export type StoreErrorCode =
  | 'migrationFailed'
  | 'schemaTooNew'
  | 'unsealFailed'
  | 'conflict'
  | 'notFound'
  | 'tokenReplayed'
  | 'eabKeyUsed'
  | 'serialCollision'
  | 'keyBlocked'
  | 'revoked'
  | 'storageUnavailable'
  | 'notShortleafDatabase';

/**
 * The one error type the store throws on purpose. Callers decide what a code means to their
 * client (a 409, a retry, a 503); the store knows nothing of HTTP. When the error translates a
 * lower-level failure (a SQLite error, a failed decryption) the original is kept as `cause` for
 * the log, never for the client.
 */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
