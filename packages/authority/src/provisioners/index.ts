import { acmeProvisioner } from './acme.js';
import { jwkProvisioner } from './jwk.js';
import { kubernetesProvisioner } from './kubernetes.js';
import { oidcProvisioner } from './oidc.js';
import { createProvisionerRegistry, type ProvisionerRegistry } from './registry.js';

export { acmeProvisioner } from './acme.js';
export { jwkProvisioner, type JwkProvisionerConfig } from './jwk.js';
export { IDP_ALGORITHMS, createJwksCache, type JwksCache, type JwksSource } from './jwks.js';
export { DEFAULT_MAX_TOKEN_AGE_MS, type IdpTokenConfig } from './idp-token.js';
export { kubernetesClaims, kubernetesProvisioner, type KubernetesProvisionerConfig } from './kubernetes.js';
export { oidcClaims, oidcConfigOf, oidcProvisioner, type OidcProvisionerConfig } from './oidc.js';
export { createProvisionerRegistry, type ProvisionerRegistry } from './registry.js';
export { createTokenAuthorizer, type AuthorizedBy } from './token-authorizer.js';
export type {
  ProvisionerMaterial,
  ProvisionerType,
  RevokeAuthorization,
  SignAuthorization,
  TokenAuthorizer,
  TokenAuthorizerDeps,
} from './types.js';

/**
 * The types this build knows. ACME's options are checked only as a JSON object here; the apps
 * build theirs with the ACME front door's parser (see `acmeProvisioner`).
 */
export const BUILT_IN_PROVISIONERS: ProvisionerRegistry = createProvisionerRegistry([
  jwkProvisioner,
  acmeProvisioner(),
  kubernetesProvisioner,
  oidcProvisioner,
]);
