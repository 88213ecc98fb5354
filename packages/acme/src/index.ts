// Public API of @shortleaf/acme. Other packages import only from here.
export { createAcmeApp, type AcmeAppOptions } from './app.js';
export type { AcmeCertificateStore } from './context.js';
export type { BodyReader } from './pipeline.js';
export { eabSealContext } from './eab.js';
export {
  ACME_ERRORS,
  ACME_ERROR_PREFIX,
  AcmeError,
  type AcmeErrorType,
  type AcmeIdentifier,
  type AcmeProblem,
  type Subproblem,
} from './errors.js';
export { createNoncePool, type NoncePool } from './nonces.js';
export {
  NONCE_KEY_SETTING,
  createSharedNoncePool,
  sharedNonceKey,
  type NonceKeySettings,
  type SharedNoncePool,
  type SpentNonceStore,
} from './shared-nonces.js';
export { ACME_OPTION_DEFAULTS, AcmeOptionsError, parseAcmeOptions, type AcmeOptions } from './options.js';
export type * from './ports.js';
export {
  DEFAULT_DENY_NETWORKS,
  createValidator,
  type ChallengeToValidate,
  type ValidationConfig,
  type Validator,
} from './validators/index.js';
export { DEFAULT_VALIDATION_LIMITS, type ValidationLimits } from './validation-runner.js';
