import type { OcspOutcome } from './ocsp-responder.js';

/**
 * What the authority needs from storage, declared here by the code that uses it (the SQLite
 * adapter in @shortleaf/store implements it; a PostgreSQL one could too).
 */
export interface IssuerRow {
  id: string;
  name: string;
  sealedKey: Uint8Array;
  keyAlgorithm: string;
  csrDer: Uint8Array;
  certDer: Uint8Array | null;
  createdAt: Date;
  activatedAt: Date | null;
  active: boolean;
}

export interface ProvisionerRow {
  name: string;
  type: 'jwk' | 'acme';
  publicJwk: string | null;
  policy: string;
  options?: string;
  createdAt: Date;
}

export interface CertificateRow {
  serial: string;
  issuerId: string;
  subject: string;
  names: string[];
  notBefore: Date;
  notAfter: Date;
  der: Uint8Array | null;
  provisioner: string;
  requester: string;
  status: 'reserved' | 'issued';
  createdAt: Date;
  issuedAt: Date | null;
  /** The certificate this one renewed; null when a credential issued it. */
  renewedFrom: string | null;
  /** Serial of the certificate that started the lineage. */
  lineage: string;
  /** When the lineage's holder last presented a real credential (token, ACME order). */
  lineageStartedAt: Date;
  /** SHA-256 (hex) of the canonical SubjectPublicKeyInfo. */
  spkiSha256: string | null;
}

/** How far a revocation reaches beyond its certificate (see `REVOCATION_REACH` in revoke.ts). */
export interface RevocationReach {
  lineage: boolean;
  key: boolean;
}

/** What a revocation did: its own record, and the certificates it reached. */
export interface RevocationOutcome {
  record: RevocationRow;
  alreadyRevoked: boolean;
  previousReason?: string;
  also: RevocationRow[];
}

export interface AuditEntry {
  at: Date;
  action: string;
  actor: string;
  serial: string | null;
  detail: Record<string, unknown>;
}

export interface RevocationRow {
  serial: string;
  revokedAt: Date;
  reason: string;
  actor: string;
}

export interface CrlRow {
  issuerId: string;
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: number;
  der: Uint8Array;
}

export interface RootCrlRow {
  rootFingerprint: string;
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  der: Uint8Array;
  importedAt: Date;
}

export interface OcspSignerRow {
  id: string;
  issuerId: string;
  sealedKey: Uint8Array;
  csrDer: Uint8Array;
  certDer: Uint8Array | null;
  createdAt: Date;
}

/** Revocation state: the store's `revocations` repository implements it. */
export interface RevocationStore {
  revoke(r: RevocationRow, audit: AuditEntry, tokenUse?: { provisioner: string; jti: string; expiresAt: Date }, reach?: RevocationReach): Promise<RevocationOutcome>;
  get(serial: string): Promise<RevocationRow | null>;
  list(): Promise<RevocationRow[]>;
  since(afterRowid: number): Promise<Array<{ rowid: number; serial: string }>>;
  listForCrl(issuerId: string, previousThisUpdate: Date | null): Promise<Array<{ serial: string; revokedAt: Date; reason: string }>>;
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
  createIssuer(r: Pick<IssuerRow, 'id' | 'name' | 'sealedKey' | 'keyAlgorithm' | 'csrDer' | 'createdAt'>): Promise<void>;
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
