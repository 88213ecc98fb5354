// @shortleaf/store/contracts: what every storage engine takes, returns and throws, without any
// engine in it. The authority and ACME import only from here, so loading them never loads a
// database driver (contracts.test.ts checks that nothing under this folder does). Ports stay
// declared by the code that uses them (authority/src/ports.ts, acme/src/ports.ts), written in
// these records; the engines implement those ports.
export { StoreError } from './errors.js';
export type { StoreErrorCode } from './errors.js';
export { certificateKeyDigest, keyDigest } from './key-digest.js';
export type {
  AuditEntry,
  CertificateRecord,
  CertificateReservation,
  CertificatesSince,
  IssuerRecord,
  LineageFields,
  ListAuditOptions,
  ListCertificatesOptions,
  NewIssuer,
  NewProvisioner,
  ProvisionerRecord,
  ReserveCertificateInput,
  TokenUse,
} from './records.js';
export type {
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
export type {
  AcmeAccountRecord,
  AcmeAccountStatus,
  AcmeAuthorizationRecord,
  AcmeAuthorizationStatus,
  AcmeChallengeRecord,
  AcmeChallengeStatus,
  AcmeChallengeType,
  AcmeEabKeyRecord,
  AcmeIdentifierRecord,
  AcmeOrderRecord,
  AcmeOrderStatus,
  AcmeProblemRecord,
  AcmeValidationOutcome,
} from './acme.js';
export type { AcmeEngine, CoordinationEngine, HeldLock, NoticeTopic, RevocationsEngine, Store } from './store.js';
