import type {
  AcmeAccountRecord,
  AcmeAccountStatus,
  AcmeAuthorizationRecord,
  AcmeAuthorizationStatus,
  AcmeChallengeRecord,
  AcmeEabKeyRecord,
  AcmeIdentifierRecord,
  AcmeOrderRecord,
  AcmeOrderStatus,
  AcmeProblemRecord,
  AcmeValidationOutcome,
} from './acme.js';
import type {
  AuditEntry,
  CertificateRecord,
  IssuerRecord,
  ListAuditOptions,
  ListCertificatesOptions,
  NewIssuer,
  NewProvisioner,
  ProvisionerRecord,
  ReserveCertificateInput,
  CertificatesSince,
  TokenUse,
} from './records.js';
import type {
  BlockedKeyRecord,
  ChangeCursor,
  CrlEntryRecord,
  CrlRecord,
  OcspSignerRecord,
  RevocationChange,
  RevocationOutcome,
  RevocationReach,
  RevocationRecord,
  RootCrlRecord,
} from './revocations.js';

// What an engine offers the apps that wire it: every port the authority, ACME and the CLI declare
// is a subset of this (apps/ca/src/store-conformance.ts checks each engine and each port at
// compile time). Semantics, error codes and orderings are pinned by the contract suite
// (src/contract/), which every engine runs. Engine-only operations (SQLite's file backup) are not
// here: the verbs that need them open that engine on purpose.

/** Revocation state: revocations and their reach, blocked keys, CRLs, root CRLs, root-delegated OCSP signers. */
export interface RevocationsEngine {
  revoke(
    r: RevocationRecord,
    audit: AuditEntry,
    tokenUse?: TokenUse,
    reach?: RevocationReach,
  ): Promise<RevocationOutcome>;
  blockedKey(spkiSha256: string): Promise<BlockedKeyRecord | null>;
  get(serial: string): Promise<RevocationRecord | null>;
  listForCrl(issuerId: string, previousThisUpdate: Date | null): Promise<CrlEntryRecord[]>;
  /** Every revocation, newest first. */
  list(): Promise<RevocationRecord[]>;
  /** Revocations recorded or changed (reason replaced by keyCompromise) after `cursor`, by any process; null: from the start. */
  changes(cursor: ChangeCursor | null): Promise<RevocationChange[]>;
  /** The cursor after everything recorded so far. */
  changeCursor(): Promise<ChangeCursor>;
  latestCrl(issuerId: string): Promise<CrlRecord | null>;
  insertCrl(r: CrlRecord): Promise<void>;
  pruneCrls(issuerId: string, keep: number): Promise<void>;
  importRootCrl(r: RootCrlRecord): Promise<void>;
  latestRootCrl(rootFingerprint: string): Promise<RootCrlRecord | null>;
  createOcspSigner(r: Omit<OcspSignerRecord, 'certDer'>): Promise<void>;
  setOcspSignerCertificate(id: string, certDer: Uint8Array): Promise<void>;
  getOcspSigner(issuerId: string, opts?: { certified?: boolean }): Promise<OcspSignerRecord | null>;
}

/** ACME accounts, EAB keys, orders, authorizations and challenges. */
export interface AcmeEngine {
  createAccount(a: AcmeAccountRecord, eab?: { kid: string; at: Date }): Promise<void>;
  getAccount(id: string): Promise<AcmeAccountRecord | null>;
  getAccountByThumbprint(provisioner: string, thumbprint: string): Promise<AcmeAccountRecord | null>;
  updateAccount(id: string, change: { contact?: string[]; status?: AcmeAccountStatus }): Promise<void>;
  changeAccountKey(id: string, jwk: string, thumbprint: string): Promise<void>;
  createEabKey(r: Omit<AcmeEabKeyRecord, 'accountId' | 'boundAt'>): Promise<void>;
  getEabKey(kid: string): Promise<AcmeEabKeyRecord | null>;
  listEabKeys(provisioner: string): Promise<AcmeEabKeyRecord[]>;
  createOrder(o: AcmeOrderRecord, newAuthorizations: AcmeAuthorizationRecord[]): Promise<void>;
  getOrder(id: string): Promise<AcmeOrderRecord | null>;
  /** Newest first (equal `createdAt`: the later inserted first). */
  listOrders(accountId: string, limit: number): Promise<AcmeOrderRecord[]>;
  transitionOrder(
    id: string,
    from: AcmeOrderStatus,
    to: { status: AcmeOrderStatus; error?: AcmeProblemRecord; certificateSerial?: string },
  ): Promise<boolean>;
  getOrderByCertificate(serial: string): Promise<AcmeOrderRecord | null>;
  getOrderReplacing(serial: string): Promise<AcmeOrderRecord | null>;
  countOrdersSince(accountId: string, since: Date): Promise<number>;
  /** With its challenges in the order they were created. */
  getAuthorization(id: string): Promise<AcmeAuthorizationRecord | null>;
  findValidAuthorization(
    accountId: string,
    identifier: AcmeIdentifierRecord,
    wildcard: boolean,
    now: Date,
  ): Promise<AcmeAuthorizationRecord | null>;
  setAuthorizationStatus(id: string, status: AcmeAuthorizationStatus): Promise<void>;
  getChallenge(id: string): Promise<AcmeChallengeRecord | null>;
  startChallenge(id: string): Promise<boolean>;
  finishChallenge(id: string, outcome: AcmeValidationOutcome): Promise<void>;
  countFailedValidationsSince(accountId: string, since: Date): Promise<number>;
  /**
   * Records an ACME nonce as spent: true the first time any process spends it, false after.
   * Kept until `expiresAt` (the nonce is refused by its own lifetime after that).
   */
  spendNonce(nonce: string, expiresAt: Date): Promise<boolean>;
  /** Drops spent nonces whose lifetime ended before `now`; returns how many. */
  pruneSpentNonces(now: Date): Promise<number>;
}

/** What a change notice is about: revocations (and blocked keys), intermediates (and roots, root CRLs, root-delegated OCSP signers), or CRLs. */
export type NoticeTopic = 'revocations' | 'issuers' | 'crls';

/** A lock one process holds among all processes on the database (`CoordinationEngine.tryLock`). */
export interface HeldLock {
  /** False once the lock is lost: released, or the connection that held it ended. */
  readonly held: boolean;
  /** Gives the lock up; idempotent. */
  release(): Promise<void>;
}

/**
 * How processes sharing one database work together: a lock for work that must happen once at a
 * time (building a CRL), and notices that wake other processes soon after a write. Notices are a
 * speed-up only: every reader also polls, so a lost notice delays, never loses, a change.
 */
export interface CoordinationEngine {
  /**
   * Takes the named lock if no process (this one included) holds it, else null. A holder that dies
   * loses it with its connection, so another process can take it at once.
   */
  tryLock(name: string): Promise<HeldLock | null>;
  /**
   * Calls `onNotice` after a write on `topic` committed, by this or (on an engine several processes
   * share) any other process. Returns the unsubscribe.
   */
  subscribe(topic: NoticeTopic, onNotice: () => void): Promise<() => void>;
}

/** One open store, whichever engine is below. */
export interface Store {
  readonly revocations: RevocationsEngine;
  readonly acme: AcmeEngine;
  readonly coordination: CoordinationEngine;
  /** 'sqlite': one process owns the database (serve.lock); 'postgres': any number share it. */
  readonly engine: 'sqlite' | 'postgres';
  close(): Promise<void>;

  createIssuer(r: NewIssuer): Promise<void>;
  setIssuerCertificate(id: string, certDer: Uint8Array): Promise<void>;
  getIssuer(id: string): Promise<IssuerRecord | null>;
  getIssuerByName(name: string): Promise<IssuerRecord | null>;
  getActiveIssuer(): Promise<IssuerRecord | null>;
  listIssuers(): Promise<IssuerRecord[]>;
  activateIssuer(id: string, at: Date): Promise<void>;
  lastCertificateExpiry(issuerId: string, exceptProvisioners?: readonly string[]): Promise<Date | null>;

  addRoot(certDer: Uint8Array, at: Date): Promise<string>;
  listRoots(): Promise<Uint8Array[]>;

  addProvisioner(r: NewProvisioner): Promise<void>;
  getProvisioner(name: string): Promise<ProvisionerRecord | null>;
  listProvisioners(): Promise<ProvisionerRecord[]>;

  reserveCertificate(input: ReserveCertificateInput): Promise<void>;
  completeCertificate(serial: string, der: Uint8Array, issuedAt: Date): Promise<void>;
  getCertificate(serial: string): Promise<CertificateRecord | null>;
  /** Every certificate of a lineage, in the order they were reserved (equal `createdAt`: insertion order; SQLite uses its rowid, another engine needs its own sequence). */
  listLineage(lineage: string): Promise<CertificateRecord[]>;
  getBlockedKey(spkiSha256: string): Promise<BlockedKeyRecord | null>;
  /** In the order they were reserved (equal `createdAt`: insertion order, as `listLineage`). */
  listCertificates(opts?: ListCertificatesOptions): Promise<CertificateRecord[]>;
  pruneTokenUses(now: Date): Promise<number>;
  /**
   * Certificates (reserved or issued) `provisioner` recorded for `requester` after `since`, counted
   * in the database so a per-identity limit holds across every instance sharing it.
   */
  countCertificatesSince(provisioner: string, requester: string, since: Date): Promise<CertificatesSince>;

  appendAudit(e: AuditEntry): Promise<void>;
  /** In the order they were written. */
  listAudit(opts?: ListAuditOptions): Promise<AuditEntry[]>;

  getSetting(key: string): Promise<string | null>;
  setSetting(key: string, value: string): Promise<void>;
  /** Stores `value` under `key` unless a value is there already; returns the value stored (the first writer's, across processes). */
  settingOnce(key: string, value: string): Promise<string>;

  /** Row count of every table, by table name: tests and operators check a refusal changed nothing. */
  counts(): Promise<Record<string, number>>;
}
