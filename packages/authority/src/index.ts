export { AuthorityError, type AuthorityErrorCode } from './errors.js';
export type { AuditEntry, AuthorityStore, CertificateRow, Clock, IssuerRow, KeySealer, Logger, ProvisionerRow } from './ports.js';
export { formatDuration, parseDuration } from './duration.js';
export { POLICY_DEFAULTS, parsePolicy, type Policy, type PolicyDocument } from './policy.js';
export { MAX_TOKEN_LIFETIME_S, MAX_TOKEN_NAMES, createTokenVerifier, type TokenClaims } from './token.js';
export { assertUsableIntermediate, createIntermediateKey, importIntermediate, loadActiveIssuer, type LoadedIssuer } from './issuer.js';
export { BACKDATE_MS, INTERNAL_PROVISIONER, createAuthority, type Authority, type AuthorityOptions, type IssuedCertificate } from './authority.js';
