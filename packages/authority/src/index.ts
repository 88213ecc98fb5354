export { AuthorityError, type AuthorityErrorCode } from './errors.js';
export type {
  AuditEntry,
  AuthorityStore,
  CertificateRow,
  Clock,
  Coordination,
  CrlRow,
  FrontDoor,
  IssuerRow,
  KeySealer,
  Logger,
  ProvisionerRow,
  RevocationRow,
  RevocationStore,
  RootCrlRow,
  Telemetry,
} from './ports.js';
export { NO_TELEMETRY } from './ports.js';
export { isStorageUnavailable } from './store-errors.js';
export { formatDuration, parseDuration } from './duration.js';
export { POLICY_DEFAULTS, parsePolicy, type Policy, type PolicyDocument } from './policy.js';
export {
  MAX_TOKEN_LIFETIME_S,
  MAX_TOKEN_NAMES,
  REGISTERED_CLAIMS,
  createTokenVerifier,
  type TokenClaims,
} from './token.js';
export {
  BUILT_IN_PROVISIONERS,
  acmeProvisioner,
  createProvisionerRegistry,
  jwkProvisioner,
  kubernetesProvisioner,
  oidcConfigOf,
  oidcProvisioner,
  type JwkProvisionerConfig,
  type KubernetesProvisionerConfig,
  type OidcProvisionerConfig,
  type ProvisionerMaterial,
  type ProvisionerRegistry,
  type ProvisionerType,
  type RevokeAuthorization,
  type SignAuthorization,
} from './provisioners/index.js';
export {
  CLAIM_NAME,
  CLAIM_VALUE,
  applyTemplateLifetime,
  assertTemplatesFitProvisioners,
  parseTemplate,
  parseTemplates,
  renderTemplateUris,
  type CertificateTemplate,
  type UriTemplate,
} from './template.js';
export {
  activateIntermediate,
  assertUsableIntermediate,
  createIntermediateKey,
  importIntermediate,
  IN_SERVICE,
  issuerStatuses,
  loadActiveIssuer,
  loadIssuer,
  type IssuerState,
  type IssuerStatus,
  type LoadedIssuer,
} from './issuer.js';
export {
  BACKDATE_MS,
  INTERNAL_PROVISIONER,
  OCSP_PROVISIONER,
  createAuthority,
  type Authority,
  type AuthorityOptions,
  type IssuedCertificate,
} from './authority.js';
export { REVOCATION_REACH, createRevoker, parseReason, type Revoke, type RevocationResult } from './revoke.js';
export { createCrlPublisher, type CrlPublisher, type CrlPublisherOptions } from './crl-publisher.js';
export {
  createOcspResponder,
  type OcspAnswer,
  type OcspOutcome,
  type OcspResponderOptions,
  type OcspResponderService,
} from './ocsp-responder.js';
export { createOcspRouter, type RoutedResponder } from './ocsp-router.js';
export {
  createOcspSignerManager,
  loadRootDelegatedResponder,
  ocspSignerSealContext,
  type ManagedResponder,
} from './ocsp-signers.js';
export { createRootOcspSignerKey, importRootOcspSigner, rootOcspSignerWarnings } from './root-ocsp-signer.js';
export { importRootCrl, issuerWarnings, latestRootCrl, rootCrlWarnings, rootFingerprint } from './root-crl.js';
