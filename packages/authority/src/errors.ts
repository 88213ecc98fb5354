/** Stable codes for every way the authority refuses a request; front doors map them to responses. */
export type AuthorityErrorCode =
  | 'tokenMalformed'
  | 'tokenSignature'
  | 'tokenExpired'
  | 'tokenAudience'
  | 'tokenLifetime'
  | 'tokenReplayed'
  /** `alg: none`: an unsigned token proves nothing. */
  | 'tokenUnsigned'
  /** `HS256` and kin: a shared secret the CA would have to hold; only asymmetric algorithms. */
  | 'tokenSymmetric'
  /** The token's `alg` does not fit the key its `kid` names (RS256 on an EC key). */
  | 'tokenKeyMismatch'
  /** No key in the issuer's key set (JWKS) has the token's `kid`, even after fetching it again. */
  | 'tokenUnknownKey'
  /** The token's `iss` is not the issuer its provisioner trusts. */
  | 'tokenIssuer'
  /** The token was issued (`iat`) longer ago than its provisioner's maximum token age. */
  | 'tokenTooOld'
  /** The issuer's key set (JWKS) or discovery document cannot be fetched or read. */
  | 'keysUnavailable'
  /** The credential names no certificate names of its own and its provisioner's template gives none. */
  | 'noNames'
  | 'unknownProvisioner'
  /** A provisioner type no registry row declares (provisioners/registry.ts). */
  | 'unknownProvisionerType'
  /** A provisioner's options (or key) its type refuses. */
  | 'badProvisionerOptions'
  | 'nameNotAllowed'
  | 'csrNameNotAuthorized'
  | 'keyTypeNotAllowed'
  | 'badLifetime'
  | 'lifetimeTooLong'
  | 'lifetimeTooShort'
  | 'clientCertificateRequired'
  | 'certificateUnknown'
  | 'certificateExpired'
  | 'issuerUnavailable'
  | 'rootKeyRefused'
  | 'issuerMismatch'
  /** An intermediate to import admits names the one it replaces did not (RFC 5280 §4.2.1.10). */
  | 'widerNameConstraints'
  | 'badPolicy'
  | 'badTemplate'
  | 'templateClaimMissing'
  | 'templateClaimInvalid'
  | 'badRevocationReason'
  | 'badCrl'
  | 'certificateNotFound'
  | 'certificateRevoked'
  | 'keyBlocked'
  | 'lineageExpired'
  | 'renewalNotAllowed'
  | 'notAuthorized'
  /** One identity got as many certificates from its provisioner as it may in the window; `retryAfterS` says when room comes back. */
  | 'rateLimited'
  | 'storageUnavailable'
  | 'internal';

/**
 * A refusal by the authority. `code` is stable and safe to show; `message` tells the caller what
 * to change. Internal failures (lint, storage) keep their cause for the log, not for the client.
 */
export class AuthorityError extends Error {
  override readonly name = 'AuthorityError';
  readonly code: AuthorityErrorCode;
  /** Seconds until asking again can succeed (`rateLimited`); front doors send it as Retry-After. */
  readonly retryAfterS: number | undefined;

  constructor(code: AuthorityErrorCode, message: string, options?: { cause?: unknown; retryAfterS?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryAfterS = options?.retryAfterS;
  }
}
