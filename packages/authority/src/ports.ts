import type { OcspOutcome } from './ocsp-responder.js';
import type {
  AuditEntry as StoreAuditEntry,
  CertificateRecord,
  CrlRecord,
  HeldLock,
  IssuerRecord,
  OcspSignerRecord,
  ProvisionerRecord,
  RevocationChange,
  RevocationOutcome as StoreRevocationOutcome,
  RevocationReach as StoreRevocationReach,
  RevocationRecord,
  RootCrlRecord,
} from '@shortleaf/store/contracts';

// What the authority needs from storage, declared here by the code that uses it (STYLE.md) and
// written in the store's engine-neutral records (`@shortleaf/store/contracts`), so each shape is
// declared once. Every engine implements these ports; apps/ca/src/store-conformance.ts checks it
// at compile time. The names below are the authority's words for those records.

export type IssuerRow = IssuerRecord;
/** `options` may be left out when adding one: the store defaults it to `{}`. */
export type ProvisionerRow = Omit<ProvisionerRecord, 'options'> & { options?: string };
export type CertificateRow = CertificateRecord;
/** How far a revocation reaches beyond its certificate (see `REVOCATION_REACH` in revoke.ts). */
export type RevocationReach = StoreRevocationReach;
/** What a revocation did: its own record, and the certificates it reached. */
export type RevocationOutcome = StoreRevocationOutcome;
export type AuditEntry = StoreAuditEntry;
export type RevocationRow = RevocationRecord;
export type CrlRow = CrlRecord;
export type RootCrlRow = RootCrlRecord;
export type OcspSignerRow = OcspSignerRecord;

/** Revocation state: the store's `revocations` repository implements it. */
export interface RevocationStore {
  revoke(
    r: RevocationRow,
    audit: AuditEntry,
    tokenUse?: { provisioner: string; jti: string; expiresAt: Date },
    reach?: RevocationReach,
  ): Promise<RevocationOutcome>;
  get(serial: string): Promise<RevocationRow | null>;
  list(): Promise<RevocationRow[]>;
  /** Revocations recorded or changed after `cursor` by any process (null: from the start), so a server notices others'. */
  changes(cursor: string | null): Promise<RevocationChange[]>;
  /** The cursor after everything recorded so far. */
  changeCursor(): Promise<string>;
  listForCrl(
    issuerId: string,
    previousThisUpdate: Date | null,
  ): Promise<Array<{ serial: string; revokedAt: Date; reason: string }>>;
  latestCrl(issuerId: string): Promise<CrlRow | null>;
  insertCrl(r: CrlRow): Promise<void>;
  pruneCrls(issuerId: string, keep: number): Promise<void>;
  importRootCrl(r: RootCrlRow): Promise<void>;
  latestRootCrl(rootFingerprint: string): Promise<RootCrlRow | null>;
  createOcspSigner(r: Omit<OcspSignerRow, 'certDer'>): Promise<void>;
  setOcspSignerCertificate(id: string, certDer: Uint8Array): Promise<void>;
  /**
   * The newest root-delegated OCSP signer of an intermediate; with `certified`, the newest that
   * has its certificate (a re-signed one awaiting the ceremony must not hide the one in use).
   */
  getOcspSigner(issuerId: string, opts?: { certified?: boolean }): Promise<OcspSignerRow | null>;
}

export interface AuthorityStore {
  revocations: RevocationStore;
  getActiveIssuer(): Promise<IssuerRow | null>;
  getIssuer(id: string): Promise<IssuerRow | null>;
  getIssuerByName(name: string): Promise<IssuerRow | null>;
  /** Every issuer, oldest first. */
  listIssuers(): Promise<IssuerRow[]>;
  /** The latest notAfter among an issuer's certificates, leaving out some provisioners; null if none. */
  lastCertificateExpiry(issuerId: string, exceptProvisioners?: readonly string[]): Promise<Date | null>;
  createIssuer(
    r: Pick<IssuerRow, 'id' | 'name' | 'sealedKey' | 'keyAlgorithm' | 'csrDer' | 'createdAt'>,
  ): Promise<void>;
  setIssuerCertificate(id: string, certDer: Uint8Array): Promise<void>;
  activateIssuer(id: string, at: Date): Promise<void>;
  addRoot(certDer: Uint8Array, at: Date): Promise<unknown>;
  listRoots(): Promise<Uint8Array[]>;
  addProvisioner(r: ProvisionerRow): Promise<void>;
  getProvisioner(name: string): Promise<ProvisionerRow | null>;
  listProvisioners(): Promise<ProvisionerRow[]>;
  reserveCertificate(input: {
    certificate: Omit<CertificateRow, 'der' | 'status' | 'issuedAt'>;
    /** Refused with StoreError `keyBlocked` / `revoked` when the key is blocked or `renewedFrom` revoked. */
    tokenUse?: { provisioner: string; jti: string; expiresAt: Date };
    audit: AuditEntry;
  }): Promise<void>;
  completeCertificate(serial: string, der: Uint8Array, issuedAt: Date): Promise<void>;
  getCertificate(serial: string): Promise<CertificateRow | null>;
  pruneTokenUses(now: Date): Promise<number>;
  /** Certificates `provisioner` recorded for `requester` after `since`, and the oldest of them. */
  countCertificatesSince(
    provisioner: string,
    requester: string,
    since: Date,
  ): Promise<{ count: number; oldest: Date | null }>;
}

/**
 * Work that must happen once at a time among every process on the database (building and signing
 * a CRL): the store's `coordination` implements it.
 */
export interface Coordination {
  /** The named lock, or null while any process (this one included) holds it; lost with its holder. */
  tryLock(name: string): Promise<HeldLock | null>;
}

/** Seals and unseals private keys at rest; the store package provides it. */
export interface KeySealer {
  seal(plaintext: Uint8Array, context: string): Promise<Uint8Array>;
  unseal(blob: Uint8Array, context: string): Promise<Uint8Array>;
}

export interface Clock {
  now(): Date;
}

/** Structured log events; fields never carry keys, tokens or passphrases. */
export interface Logger {
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
}

/** Which front door asked for a certificate: the REST API (token or mTLS), ACME, or the CA itself. */
export type FrontDoor = 'rest' | 'acme' | 'internal';

/**
 * What the authority reports for metrics, declared here so that no domain package depends on a
 * metrics library (the `serve` command implements it with prom-client). Calls are synchronous
 * and must be cheap: `ocspAnswered` runs once per OCSP response, tens of thousands a second.
 */
export interface Telemetry {
  /** A certificate was signed and recorded; `ms` runs from the front door's call to the record. */
  issued(e: { provisioner: string; frontDoor: FrontDoor; action: 'issue' | 'renew'; ms: number }): void;
  /** A certificate was newly revoked (a repeated revocation is not counted). */
  revoked(reason: string): void;
  /** An OCSP response went out; `cacheHit` when it was pre-signed rather than signed for this request. */
  ocspAnswered(outcome: OcspOutcome, cacheHit: boolean): void;
  /** A CRL was built, signed and stored. */
  crlPublished(e: { number: bigint; entries: number; bytes: number; thisUpdate: Date; nextUpdate: Date }): void;
}

/** Telemetry that records nothing: the default wherever none is given. */
export const NO_TELEMETRY: Telemetry = {
  issued: () => undefined,
  revoked: () => undefined,
  ocspAnswered: () => undefined,
  crlPublished: () => undefined,
};
