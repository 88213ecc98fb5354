// Revocation state as every engine takes and returns it: revocations and their reach, blocked
// keys, published CRLs, imported root CRLs and root-delegated OCSP signers.

export interface RevocationRecord {
  serial: string;
  revokedAt: Date;
  reason: string;
  actor: string;
}

/** An entry as a CRL needs it; `reason` is the RFC 5280 reason name. */
export interface CrlEntryRecord {
  serial: string;
  revokedAt: Date;
  reason: string;
}

export interface CrlRecord {
  issuerId: string;
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: number;
  der: Uint8Array;
}

export interface RootCrlRecord {
  rootFingerprint: string;
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  der: Uint8Array;
  importedAt: Date;
}

export interface OcspSignerRecord {
  id: string;
  issuerId: string;
  sealedKey: Uint8Array;
  csrDer: Uint8Array;
  certDer: Uint8Array | null;
  createdAt: Date;
}

/** How far a revocation reaches beyond its own certificate; the authority decides it per reason. */
export interface RevocationReach {
  /** Every live certificate of the same lineage (renewed from it, or it from them). */
  lineage: boolean;
  /** Every live certificate with the same public key, their lineages, and the key blocked. */
  key: boolean;
}

/** What a revocation did. */
export interface RevocationOutcome {
  /** The certificate's revocation as it now stands. */
  record: RevocationRecord;
  /** Nothing changed for this certificate: it was already revoked, and the first time and reason stand. */
  alreadyRevoked: boolean;
  /** Set when keyCompromise replaced an earlier reason (RFC 5280 §5.3.1); the time stays the first one. */
  previousReason?: string;
  /** The other certificates this revocation revoked, or moved to keyCompromise, in the same transaction. */
  also: RevocationRecord[];
}

/** A public key refused for any further issuance. */
export interface BlockedKeyRecord {
  spkiSha256: string;
  reason: string;
  serial: string | null;
  blockedAt: Date;
}

/**
 * Where a reader of revocation changes stands: opaque to callers, compared only by the engine that
 * made it. Each engine backs it by a number that grows with every recorded change (SQLite: the
 * `revision` column, set from the largest one plus one under the write lock). An engine must not
 * let a reader pass a change that is not yet visible: a PostgreSQL sequence is drawn before
 * commit, so a later commit can carry a smaller number; take the revision under a lock (as SQLite
 * does) or hand out cursors only below the oldest transaction still in flight.
 */
export type ChangeCursor = string;

/** A revocation recorded, or changed (keyCompromise replacing a reason), by any process. */
export interface RevocationChange {
  serial: string;
  /** Pass it to `changes` to get only what was recorded after this one. */
  cursor: ChangeCursor;
}
