import { randomUUID } from 'node:crypto';
import { SignJWT, importJWK, type JWK } from 'jose';

export interface MintTokenInput {
  provisioner: string;
  /** The provisioner's private JWK (ES256 P-256 or EdDSA Ed25519). */
  privateJwk: JWK;
  /** The CA URL the token is for, e.g. https://ca.internal:9443; the audience is its sign endpoint. */
  caUrl: string;
  subject: string;
  sans?: readonly string[];
  /** Seconds; the CA accepts at most 300. */
  lifetimeSeconds?: number;
  now?: Date;
  /** Overrides the audience (the revoke endpoint uses its own). */
  audience?: string;
  /**
   * Extra string claims, e.g. `{ namespace: 'prod', service: 'api' }`, which a provisioner's
   * certificate template may build URI SANs from. Registered claim names are refused.
   */
  claims?: Readonly<Record<string, string>>;
}

/** Claims the token itself is made of (RFC 7519 §4.1, and our `sans`); `claims` may not set them. */
export const REGISTERED_CLAIMS: readonly string[] = ['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'sans'];

/** The audience a sign token must carry for a CA URL. */
export const signAudience = (caUrl: string): string => `${caUrl.replace(/\/+$/, '')}/api/v1/sign`;

/** The audience a revoke token must carry for a CA URL; its `sub` is the serial to revoke. */
export const revokeAudience = (caUrl: string): string => `${caUrl.replace(/\/+$/, '')}/api/v1/revoke`;

/** Mints a one-time token (JWT) as `shortleaf token` does; any JOSE library can do the same. */
export async function mintToken(input: MintTokenInput): Promise<string> {
  const registered = Object.keys(input.claims ?? {}).find((k) => REGISTERED_CLAIMS.includes(k));
  if (registered !== undefined)
    throw new RangeError(`the claim "${registered}" is a registered claim the token sets itself; choose another name`);
  const alg = input.privateJwk.kty === 'OKP' ? 'EdDSA' : 'ES256';
  const key = await importJWK(input.privateJwk, alg);
  const now = Math.floor((input.now ?? new Date()).getTime() / 1000);
  const jwt = new SignJWT({
    ...input.claims,
    sans: [...(input.sans && input.sans.length > 0 ? input.sans : [input.subject])],
  })
    .setProtectedHeader({
      alg,
      typ: 'JWT',
      ...(input.privateJwk.kid === undefined ? {} : { kid: input.privateJwk.kid }),
    })
    .setIssuer(input.provisioner)
    .setAudience(input.audience ?? signAudience(input.caUrl))
    .setSubject(input.subject)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + (input.lifetimeSeconds ?? 300))
    .setJti(randomUUID());
  return jwt.sign(key);
}
