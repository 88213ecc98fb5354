export { createApiApp, type ApiAppOptions } from './app.js';
export {
  ApiError,
  PROBLEM_TYPE_PREFIX,
  toProblem,
  type ApiErrorCode,
  type Problem,
  type ProblemCode,
} from './problems.js';
export { MAX_JSON_DEPTH } from './body.js';
export { DEFAULT_OIDC_SCOPES, provisionerInfo, type OidcLoginInfo, type ProvisionerInfo } from './provisioner-info.js';
