import { AuthorityError } from '../errors.js';
import type { ProvisionerRow } from '../ports.js';
import { identifiesIdp, parseIdpOptions, refuseRevoke, verifyIdpToken, type IdpTokenConfig } from './idp-token.js';
import { IDP_ALGORITHMS, createJwksCache } from './jwks.js';
import type { ProvisionerMaterial, ProvisionerType, TokenAuthorizer, TokenAuthorizerDeps } from './types.js';

/**
 * A Kubernetes provisioner as configured (`options` JSON): the cluster's service-account issuer
 * (`--service-account-issuer`), the audience pods request in their projected volume, the
 * cluster's signing keys (`jwks`, as `kubectl get --raw /openid/v1/jwks` prints them, or
 * `jwksUrl`), and `maxTokenAge` (default 1h).
 */
export type KubernetesProvisionerConfig = IdpTokenConfig;

function parseKubernetes(material: ProvisionerMaterial): KubernetesProvisionerConfig {
  if (material.publicJwk !== null)
    throw new AuthorityError(
      'badProvisionerOptions',
      "a Kubernetes provisioner has no key of its own: it trusts the cluster's key set (--jwks-file or --jwks-url)",
    );
  const { issuer, audience, keys, maxTokenAgeMs, identityLimit } = parseIdpOptions(
    material.options,
    'Kubernetes',
    [],
    () => {
      throw new AuthorityError(
        'badProvisionerOptions',
        "a Kubernetes provisioner needs the cluster's service-account keys: --jwks-file FILE (kubectl get --raw /openid/v1/jwks) or --jwks-url URL",
      );
    },
  );
  return { issuer, audience, keys, maxTokenAgeMs, identityLimit };
}

/** The stored options of a row, parsed once per distinct text. */
function configOf(cache: Map<string, { text: string; config: KubernetesProvisionerConfig }>, row: ProvisionerRow) {
  const text = row.options ?? '{}';
  const hit = cache.get(row.name);
  if (hit !== undefined && hit.text === text) return hit.config;
  const config = parseKubernetes({ publicJwk: row.publicJwk, options: JSON.parse(text) });
  cache.set(row.name, { text, config });
  return config;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The identity a projected service-account token carries (the `kubernetes.io` claim the API
 * server writes, and `sub` = `system:serviceaccount:NAMESPACE:NAME`), as template claims:
 * `namespace`, `serviceaccount`, and `pod` when the token is bound to one.
 */
export function kubernetesClaims(payload: Record<string, unknown>): Record<string, string> {
  const k8s = payload['kubernetes.io'];
  if (!isObject(k8s)) throw new AuthorityError('tokenMalformed', 'the token has no "kubernetes.io" claim');
  const { namespace, serviceaccount, pod } = k8s;
  if (typeof namespace !== 'string' || !isObject(serviceaccount) || typeof serviceaccount.name !== 'string')
    throw new AuthorityError(
      'tokenMalformed',
      'the token\'s "kubernetes.io" claim must name a namespace and a serviceaccount',
    );
  // The API server writes both; a token whose two statements of identity disagree is not one of its.
  if (payload.sub !== `system:serviceaccount:${namespace}:${serviceaccount.name}`)
    throw new AuthorityError('tokenMalformed', 'the token\'s "sub" does not name its "kubernetes.io" service account');
  const claims: Record<string, string> = { namespace, serviceaccount: serviceaccount.name };
  if (pod !== undefined) {
    if (!isObject(pod) || typeof pod.name !== 'string')
      throw new AuthorityError('tokenMalformed', 'the token\'s "kubernetes.io" pod must have a name');
    claims.pod = pod.name;
  }
  return claims;
}

/**
 * Whom the per-identity limit counts: the pod when the token is bound to one (a kubelet's projected
 * token always is), else the service account. One leaked token names one pod, so it is bounded
 * either way; counting per service account instead would refuse a rollout of a deployment with
 * more replicas than the limit, whose pods all bootstrap within minutes. Kubernetes names hold no
 * `/`, so the two forms cannot meet.
 */
export function kubernetesIdentity(claims: Record<string, string>): string {
  const account = `system:serviceaccount:${claims.namespace}:${claims.serviceaccount}`;
  return claims.pod === undefined ? account : `${account}/pod/${claims.pod}`;
}

function createKubernetesAuthorizer(deps: TokenAuthorizerDeps): TokenAuthorizer {
  const jwks = createJwksCache({ now: deps.now });
  const configs = new Map<string, { text: string; config: KubernetesProvisionerConfig }>();
  return {
    async authorizeSign(header, row) {
      const config = configOf(configs, row);
      const payload = await verifyIdpToken(header, row, config, jwks, deps);
      const claims = kubernetesClaims(payload);
      // Names come only from the provisioner's template: the token states who, the CA says what.
      return {
        provisioner: row.name,
        subject: null,
        names: [],
        claims,
        use: null,
        perIdentity: { identity: kubernetesIdentity(claims), limit: config.identityLimit },
      };
    },
    authorizeRevoke: () => refuseRevoke('Kubernetes service-account'),
  };
}

/**
 * Projected service-account tokens (the JWT a kubelet mounts into a pod), verified against the
 * cluster's keys. They are bearer tokens the pod reuses until the kubelet rotates them, so they are
 * not single-use: what bounds a replay is their audience (minted for this CA only), their short
 * life and the maximum token age, the fresh key every CSR proves, and the per-identity limit
 * (`maxCertificatesPerIdentity`, counted per pod). Their certificates carry only
 * the names the provisioner's template makes from the namespace, service account and pod.
 */
export const kubernetesProvisioner: ProvisionerType<KubernetesProvisionerConfig> = {
  type: 'kubernetes',
  label: 'Kubernetes',
  summary: 'kubernetes (projected service-account tokens)',
  parse: parseKubernetes,
  templateClaims: ['namespace', 'serviceaccount', 'pod'],
  singleUse: false,
  mtlsRenewalByDefault: true,
  authenticateAgain: "get a new certificate with the pod's current service-account token",
  tokens: {
    algorithms: IDP_ALGORITHMS,
    create: createKubernetesAuthorizer,
    identifies: identifiesIdp,
  },
};
