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
}

/** The audience a sign token must carry for a CA URL. */
export const signAudience = (caUrl: string): string => `${caUrl.replace(/\/+$/, '')}/api/v1/sign`;

/** Mints a one-time token (JWT) as `shortleaf token` does; any JOSE library can do the same. */
export async function mintToken(input: MintTokenInput): Promise<string> {
  const alg = input.privateJwk.kty === 'OKP' ? 'EdDSA' : 'ES256';
  const key = await importJWK(input.privateJwk, alg);
  const now = Math.floor((input.now ?? new Date()).getTime() / 1000);
  const jwt = new SignJWT({ sans: [...(input.sans && input.sans.length > 0 ? input.sans : [input.subject])] })
    .setProtectedHeader({ alg, typ: 'JWT', ...(input.privateJwk.kid === undefined ? {} : { kid: input.privateJwk.kid }) })
    .setIssuer(input.provisioner)
    .setAudience(input.audience ?? signAudience(input.caUrl))
    .setSubject(input.subject)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + (input.lifetimeSeconds ?? 300))
    .setJti(randomUUID());
  return jwt.sign(key);
}
