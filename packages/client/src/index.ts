export {
  CaProblemError,
  createClient,
  type Client,
  type ClientOptions,
  type IssuedResponse,
  type ProvisionerInfoResponse,
} from './client.js';
export { PROBLEM_TYPE_PREFIX, problemCode, problemType } from './problem-type.js';
export { REGISTERED_CLAIMS, mintToken, revokeAudience, signAudience, type MintTokenInput } from './token.js';
