// Public API of @shortleaf/store. Other packages import only from here.
export { StoreError } from './errors.js';
export type { StoreErrorCode } from './errors.js';
export { SEAL_SALT_SETTING, openSealer, scryptKdf, sealSecret, unsealSecret, type Kdf, type KdfParams, type SealSettings, type Sealer } from './seal.js';
export { tryLockFile, type FileLock } from './file-lock.js';
export { SqliteStore } from './sqlite-store.js';
export { certificateKeyDigest, keyDigest } from './key-digest.js';
export type {
  AuditEntry,
  CertificateRecord,
  CertificateReservation,
  LineageFields,
  IssuerRecord,
  ListAuditOptions,
  ListCertificatesOptions,
  NewIssuer,
  NewProvisioner,
  OpenOptions,
  ProvisionerRecord,
  ReserveCertificateInput,
  TokenUse,
} from './records.js';
export { RevocationRepository, type BlockedKeyRecord, type CrlEntryRecord, type RevocationOutcome, type RevocationReach, type CrlRecord, type OcspSignerRecord, type RevocationRecord, type RootCrlRecord } from './revocation-repository.js';
export {
  AcmeRepository,
  type AcmeAccountRecord,
  type AcmeAccountStatus,
  type AcmeAuthorizationRecord,
  type AcmeAuthorizationStatus,
  type AcmeChallengeRecord,
  type AcmeChallengeStatus,
  type AcmeChallengeType,
  type AcmeEabKeyRecord,
  type AcmeIdentifierRecord,
  type AcmeOrderRecord,
  type AcmeOrderStatus,
  type AcmeProblemRecord,
  type AcmeValidationOutcome,
} from './acme-repository.js';
