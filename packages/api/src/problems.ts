import { AuthorityError, isStorageUnavailable, type AuthorityErrorCode } from '@shortleaf/authority';
import { PROBLEM_TYPE_PREFIX, problemType } from '@shortleaf/client';
import { PkiError, type PkiErrorCode } from '@shortleaf/pki';

/** RFC 7807 problem document as Shortleaf's REST API sends it. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
}

export { PROBLEM_TYPE_PREFIX };

/** Codes of the errors the HTTP layer raises itself, before the authority sees a request. */
export type ApiErrorCode =
  'badJson' | 'badRequest' | 'unsupportedMediaType' | 'bodyTooLarge' | 'notFound' | 'methodNotAllowed';

/** Errors raised by the HTTP layer itself, before the authority sees a request. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: ApiErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Every code that can reach the REST front door: its own, the authority's and the PKI core's. */
export type ProblemCode = ApiErrorCode | AuthorityErrorCode | PkiErrorCode;

/**
 * A row of the problem table: the HTTP status and a short title, the detail being the error's
 * message. `internal` rows are bugs or failures the client cannot act on: they go out as a bare
 * 500 whose detail says nothing, and the cause goes to the log (Boulder's `web/probs.go`).
 */
export type ProblemRow = { status: number; title: string } | 'internal';

/** One row per code, every code: a code nobody maps does not compile (see problems.test.ts). */
export type ProblemTable = { readonly [C in ProblemCode]: ProblemRow };

export const PROBLEMS: ProblemTable = {
  badJson: { status: 400, title: 'Request body is not valid JSON' },
  badRequest: { status: 400, title: 'Bad request' },
  unsupportedMediaType: { status: 415, title: 'Unsupported media type' },
  bodyTooLarge: { status: 413, title: 'Request body too large' },
  notFound: { status: 404, title: 'Not found' },
  methodNotAllowed: { status: 405, title: 'Method not allowed' },
  badPem: { status: 400, title: 'Malformed PEM' },
  badDer: { status: 400, title: 'Malformed DER' },
  badCsr: { status: 400, title: 'Malformed CSR' },
  badCsrSignature: { status: 400, title: 'CSR signature does not verify' },
  badName: { status: 400, title: 'Invalid name' },
  badCertificate: { status: 400, title: 'Malformed certificate' },
  // A subject attribute or extended key usage the template asked for, from the token's claims.
  badSubject: { status: 400, title: 'Invalid subject attribute' },
  badExtKeyUsage: { status: 400, title: 'Invalid extended key usage' },
  badOcspRequest: { status: 400, title: 'Malformed OCSP request' },
  unsupportedKey: { status: 400, title: 'Unsupported key type' },
  weakKey: { status: 400, title: 'Key too weak' },
  unsupportedAlgorithm: { status: 400, title: 'Unsupported signature algorithm' },
  tokenMalformed: { status: 400, title: 'Malformed token' },
  tokenSignature: { status: 401, title: 'Token signature invalid' },
  tokenExpired: { status: 401, title: 'Token expired' },
  tokenAudience: { status: 401, title: 'Token audience mismatch' },
  tokenLifetime: { status: 401, title: 'Token lifetime too long' },
  tokenReplayed: { status: 401, title: 'Token already used' },
  tokenUnsigned: { status: 401, title: 'Unsigned token (alg none)' },
  tokenSymmetric: { status: 401, title: 'Token signed with a shared secret (HS*)' },
  tokenKeyMismatch: { status: 401, title: 'Token algorithm does not fit its key' },
  tokenUnknownKey: { status: 401, title: 'Token signed by a key the issuer does not publish' },
  tokenIssuer: { status: 401, title: 'Token issuer mismatch' },
  tokenTooOld: { status: 401, title: 'Token too old' },
  // The identity provider's keys cannot be fetched: try again later (an outage, not bad input).
  keysUnavailable: { status: 503, title: "Token issuer's keys unavailable" },
  // The provisioner's template gives these tokens no names: the operator's to fix.
  noNames: { status: 403, title: 'Credential grants no names' },
  unknownProvisioner: { status: 401, title: 'Unknown provisioner' },
  nameNotAllowed: { status: 403, title: 'Name not allowed by policy' },
  // The provisioner's certificate template needs a token claim the token lacks, or cannot use its value.
  templateClaimMissing: { status: 400, title: 'Token lacks a claim the certificate template needs' },
  templateClaimInvalid: { status: 400, title: 'Token claim not usable in the certificate template' },
  csrNameNotAuthorized: { status: 403, title: 'CSR asks for an unauthorised name' },
  keyTypeNotAllowed: { status: 403, title: 'Key type not allowed by policy' },
  badLifetime: { status: 400, title: 'Invalid lifetime' },
  lifetimeTooLong: { status: 400, title: 'Lifetime too long' },
  lifetimeTooShort: { status: 400, title: 'Lifetime too short' },
  clientCertificateRequired: { status: 401, title: 'Client certificate required' },
  certificateUnknown: { status: 403, title: 'Certificate not issued by this CA' },
  certificateExpired: { status: 401, title: 'Certificate expired' },
  badRevocationReason: { status: 400, title: 'Invalid revocation reason' },
  badCrl: { status: 400, title: 'Invalid CRL' },
  certificateNotFound: { status: 404, title: 'Certificate not found' },
  certificateRevoked: { status: 403, title: 'Certificate revoked' },
  keyBlocked: { status: 403, title: 'Public key blocked (revoked for keyCompromise)' },
  // Renewal refusals only the holder's original credential can answer: a token, or an ACME order.
  lineageExpired: { status: 403, title: 'Lineage too old to renew; authenticate again' },
  renewalNotAllowed: { status: 403, title: 'Renewal over this door not allowed for this provisioner' },
  notAuthorized: { status: 403, title: 'Not authorized' },
  // One identity's certificates per window (--max-certificates-per-identity); sent with Retry-After.
  rateLimited: { status: 429, title: 'Too many certificates for this identity' },
  // Operator input (a policy, a template, an intermediate or root to import) that the operator can
  // correct: today only the CLI meets these, the admin API and console next (issue 16).
  badPolicy: { status: 400, title: 'Invalid policy' },
  badTemplate: { status: 400, title: 'Invalid certificate template' },
  unknownProvisionerType: { status: 400, title: 'Unknown provisioner type' },
  badProvisionerOptions: { status: 400, title: 'Invalid provisioner options' },
  rootKeyRefused: { status: 400, title: 'Root certificate or key refused' },
  issuerMismatch: { status: 400, title: 'Intermediate does not match' },
  widerNameConstraints: { status: 400, title: 'Intermediate admits names its predecessor did not' },
  storageUnavailable: { status: 503, title: 'Storage unavailable' },
  issuerUnavailable: { status: 503, title: 'No active intermediate' },
  // A lint failure means the CA built a wrong certificate: a bug, and nothing was issued.
  lintFailed: 'internal',
  internal: 'internal',
};

const INTERNAL: Problem = {
  type: problemType('internal'),
  title: 'Internal error',
  status: 500,
  detail: 'the server failed to handle this request; the cause is in its log',
};

/** Seconds a client is told to wait before retrying a 503 (the store or the intermediate unavailable). */
export const RETRY_AFTER_SECONDS = 5;

/**
 * Turns any error into a problem document. Known codes keep their message (written for the
 * client); internal codes and anything else are a 500 with a generic detail, and the caller logs
 * the cause. `retryAfterS` is the refusal's own Retry-After (`rateLimited`).
 */
export function toProblem(err: unknown): { problem: Problem; internal: boolean; retryAfterS?: number } {
  // The store's outage surfaces untranslated from a read (a provisioner, a certificate): it is
  // the same retriable 503 as the authority's own storageUnavailable.
  if (isStorageUnavailable(err) && !(err instanceof AuthorityError))
    return toProblem(
      new AuthorityError('storageUnavailable', 'the certificate store is unavailable; try again shortly'),
    );
  if (!(err instanceof ApiError || err instanceof AuthorityError || err instanceof PkiError))
    return { problem: { ...INTERNAL }, internal: true };
  const row = PROBLEMS[err.code];
  if (row === 'internal') return { problem: { ...INTERNAL }, internal: true };
  return {
    problem: { type: problemType(err.code), title: row.title, status: row.status, detail: err.message },
    internal: false,
    ...(err instanceof AuthorityError && err.retryAfterS !== undefined ? { retryAfterS: err.retryAfterS } : {}),
  };
}
