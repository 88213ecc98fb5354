import { AuthorityError } from '../errors.js';
import { TOKEN_ALGORITHMS, createJwkTokenVerifier } from '../token.js';
import type { ProvisionerMaterial, ProvisionerType, TokenAuthorizer, TokenAuthorizerDeps } from './types.js';

/** A JWK provisioner as configured: the public key its one-time tokens are signed with. */
export interface JwkProvisionerConfig {
  publicJwk: Record<string, unknown>;
}

// The curves behind ES256 (RFC 7518 §3.4) and EdDSA with Ed25519 (RFC 8037 §3.1).
const CURVES: Readonly<Record<string, string>> = { EC: 'P-256', OKP: 'Ed25519' };

function parseJwk(material: ProvisionerMaterial): JwkProvisionerConfig {
  if (material.publicJwk === null)
    throw new AuthorityError(
      'badProvisionerOptions',
      'a JWK provisioner needs the public key its tokens are signed with',
    );
  let jwk: unknown;
  try {
    jwk = JSON.parse(material.publicJwk);
  } catch (cause) {
    throw new AuthorityError('badProvisionerOptions', "a JWK provisioner's key must be a JSON Web Key (RFC 7517)", {
      cause,
    });
  }
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk))
    throw new AuthorityError(
      'badProvisionerOptions',
      "a JWK provisioner's key must be a JSON Web Key object (RFC 7517)",
    );
  const key = jwk as Record<string, unknown>;
  if (typeof key.kty !== 'string' || CURVES[key.kty] === undefined || key.crv !== CURVES[key.kty]) {
    throw new AuthorityError(
      'badProvisionerOptions',
      "a JWK provisioner's key is an EC P-256 (ES256) or OKP Ed25519 (EdDSA) key",
    );
  }
  // RFC 7518 §6.2.2.1, §6.3.2.1; RFC 8037 §2: "d" is the private part, which never enters the CA.
  if ('d' in key)
    throw new AuthorityError(
      'badProvisionerOptions',
      "a JWK provisioner's key must be the public half; the private key stays with whoever mints tokens",
    );
  const options = material.options;
  if (typeof options !== 'object' || options === null || Array.isArray(options) || Object.keys(options).length > 0) {
    throw new AuthorityError(
      'badProvisionerOptions',
      'a JWK provisioner has no options (its key is its configuration)',
    );
  }
  return { publicJwk: key };
}

function createJwkAuthorizer(deps: TokenAuthorizerDeps): TokenAuthorizer {
  const verifier = createJwkTokenVerifier(deps);
  // A row without a key cannot verify anything; say so as for a provisioner that does not exist.
  const keyOf = (row: { name: string; publicJwk: string | null }): string => {
    if (row.publicJwk === null)
      throw new AuthorityError('unknownProvisioner', `no JWK provisioner named ${JSON.stringify(row.name)}`);
    return row.publicJwk;
  };
  return {
    authorizeSign: async (header, row, audiences) => verifier.verifySign(header, keyOf(row), audiences),
    authorizeRevoke: async (header, row, audiences) => verifier.verifyRevoke(header, keyOf(row), audiences),
  };
}

/**
 * One-time tokens signed by the provisioner's key (`shortleaf token`): ES256 or EdDSA, living at
 * most five minutes, naming in `sub`/`sans` the names they grant, spent on first use (token.ts).
 * Its holders renew over mutual TLS unless the policy says otherwise.
 */
export const jwkProvisioner: ProvisionerType<JwkProvisionerConfig> = {
  type: 'jwk',
  label: 'JWK',
  summary: 'jwk (one-time tokens)',
  parse: parseJwk,
  singleUse: true,
  mtlsRenewalByDefault: true,
  authenticateAgain: 'get a new certificate with a fresh token',
  tokens: { algorithms: TOKEN_ALGORITHMS, create: createJwkAuthorizer },
};
