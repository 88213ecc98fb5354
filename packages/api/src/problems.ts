import { AuthorityError } from '@shortleaf/authority';
import { PkiError } from '@shortleaf/pki';

/** RFC 7807 problem document as Shortleaf's REST API sends it. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
}

export const PROBLEM_TYPE_PREFIX = 'urn:shortleaf:problem:';

/** Errors raised by the HTTP layer itself, before the authority sees a request. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: 'badJson' | 'badRequest' | 'unsupportedMediaType' | 'bodyTooLarge' | 'notFound' | 'methodNotAllowed',
    message: string,
  ) {
    super(message);
  }
}

// One row per error code: the HTTP status and a short title. The detail is the error's message.
const TABLE: Record<string, { status: number; title: string }> = {
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
  unsupportedKey: { status: 400, title: 'Unsupported key type' },
  weakKey: { status: 400, title: 'Key too weak' },
  unsupportedAlgorithm: { status: 400, title: 'Unsupported signature algorithm' },
  tokenMalformed: { status: 400, title: 'Malformed token' },
  tokenSignature: { status: 401, title: 'Token signature invalid' },
  tokenExpired: { status: 401, title: 'Token expired' },
  tokenAudience: { status: 401, title: 'Token audience mismatch' },
  tokenLifetime: { status: 401, title: 'Token lifetime too long' },
  tokenReplayed: { status: 401, title: 'Token already used' },
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
  storageUnavailable: { status: 503, title: 'Storage unavailable' },
  issuerUnavailable: { status: 503, title: 'No active intermediate' },
};

/**
 * Turns any error into a problem document. Known codes keep their message (written for the
 * client); anything else is a 500 with a generic detail, and the caller logs the cause.
 */
export function toProblem(err: unknown): { problem: Problem; internal: boolean } {
  const code = err instanceof ApiError || err instanceof AuthorityError || err instanceof PkiError ? err.code : null;
  const row = code === null ? undefined : TABLE[code];
  if (code === null || row === undefined) {
    return { problem: { type: `${PROBLEM_TYPE_PREFIX}internal`, title: 'Internal error', status: 500, detail: 'the server failed to handle this request; the cause is in its log' }, internal: true };
  }
  return { problem: { type: `${PROBLEM_TYPE_PREFIX}${code}`, title: row.title, status: row.status, detail: (err as Error).message }, internal: false };
}
