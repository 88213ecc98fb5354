import { AuthorityError, type AuthorityErrorCode } from '@shortleaf/authority';
import { StoreError } from '@shortleaf/store/contracts';

/**
 * ACME error types (RFC 8555 §6.7, RFC 9773 §4.2 for `alreadyReplaced`), one row each: the HTTP
 * status a problem of that type is sent with. Domain code throws `AcmeError`; the app's error
 * handler is the only place that turns one into a problem document.
 */
export const ACME_ERRORS = {
  accountDoesNotExist: 400,
  // RFC 8555 §7.3.6: a request from a deactivated account MUST get 401 with type `unauthorized`.
  accountDeactivated: 401,
  alreadyReplaced: 409,
  alreadyRevoked: 400,
  badCSR: 400,
  badNonce: 400,
  badPublicKey: 400,
  badRevocationReason: 400,
  badSignatureAlgorithm: 400,
  caa: 403,
  conflict: 409,
  connection: 400,
  dns: 400,
  externalAccountRequired: 400,
  incorrectResponse: 403,
  invalidContact: 400,
  malformed: 400,
  notFound: 404,
  orderNotReady: 403,
  rateLimited: 429,
  rejectedIdentifier: 400,
  serverInternal: 500,
  tls: 400,
  unauthorized: 403,
  unsupportedContact: 400,
  unsupportedIdentifier: 400,
  unsupportedMediaType: 415,
  userActionRequired: 403,
} as const;

export type AcmeErrorType = keyof typeof ACME_ERRORS;

export const ACME_ERROR_PREFIX = 'urn:ietf:params:acme:error:';

/** An identifier an error is about, for subproblems (RFC 8555 §6.7.1). */
export interface AcmeIdentifier {
  type: 'dns' | 'ip';
  value: string;
}

export interface Subproblem {
  type: AcmeErrorType;
  detail: string;
  identifier: AcmeIdentifier;
}

/** RFC 7807 problem document with ACME's extensions, as sent and as stored on a challenge. */
export interface AcmeProblem {
  type: string;
  detail: string;
  status: number;
  subproblems?: Array<{ type: string; detail: string; identifier: AcmeIdentifier }>;
  /** RFC 8555 §6.2: a `badSignatureAlgorithm` problem lists the JWS algorithms the server accepts. */
  algorithms?: string[];
}

/**
 * Rows that are not RFC 8555 types but name a status, and the type they are sent as: `malformed`
 * as Boulder does (415 for the wrong content type, RFC 8555 §6.2; 404 for an unknown resource), and
 * `unauthorized` with 401 for a deactivated account (RFC 8555 §7.3.6), where other `unauthorized`
 * refusals keep 403.
 */
const SENT_AS: Partial<Record<AcmeErrorType, AcmeErrorType>> = {
  unsupportedMediaType: 'malformed',
  notFound: 'malformed',
  accountDeactivated: 'unauthorized',
};

/**
 * A refusal with an ACME error type (see SENT_AS for the pseudo-types). `headers` carries what the
 * response needs beside the document, such as `Retry-After` on `rateLimited` or `Location` on
 * `conflict`; `algorithms` is the list a `badSignatureAlgorithm` problem must carry (RFC 8555 §6.2).
 */
export class AcmeError extends Error {
  override readonly name = 'AcmeError';
  readonly subproblems: Subproblem[];
  readonly headers: Record<string, string>;
  constructor(
    readonly type: AcmeErrorType,
    message: string,
    opts: {
      cause?: unknown;
      subproblems?: Subproblem[];
      headers?: Record<string, string>;
      status?: number;
      algorithms?: readonly string[];
    } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.subproblems = opts.subproblems ?? [];
    this.algorithms = opts.algorithms === undefined ? null : [...opts.algorithms];
    this.headers = opts.headers ?? {};
    this.status = opts.status ?? ACME_ERRORS[type];
  }

  /** The type's status from the table, unless the refusal needs another (405 for a GET). */
  readonly status: number;
  readonly algorithms: string[] | null;

  toProblem(): AcmeProblem {
    const type = SENT_AS[this.type] ?? this.type;
    const problem: AcmeProblem = { type: `${ACME_ERROR_PREFIX}${type}`, detail: this.message, status: this.status };
    if (this.algorithms !== null) problem.algorithms = this.algorithms;
    if (this.subproblems.length > 0) {
      problem.subproblems = this.subproblems.map((s) => ({
        type: `${ACME_ERROR_PREFIX}${s.type}`,
        detail: s.detail,
        identifier: s.identifier,
      }));
    }
    return problem;
  }
}

/**
 * The ACME type each authority refusal is sent as, one row per code (a new code does not compile
 * until it has one): `unavailable` is the CA's own storage failing (503 with Retry-After, so the
 * client retries), null a failure the client cannot act on (serverInternal, cause to the log).
 * The policy refusals of a CSR are `badCSR` at finalize (RFC 8555 §7.4); a key revoked for
 * keyCompromise is `badPublicKey`, as Boulder answers.
 */
export const AUTHORITY_TO_ACME: { readonly [C in AuthorityErrorCode]: AcmeErrorType | 'unavailable' | null } = {
  unknownProvisioner: 'notFound',
  keyTypeNotAllowed: 'badCSR',
  nameNotAllowed: 'badCSR',
  csrNameNotAuthorized: 'badCSR',
  badLifetime: 'badCSR',
  lifetimeTooLong: 'badCSR',
  lifetimeTooShort: 'badCSR',
  keyBlocked: 'badPublicKey',
  badRevocationReason: 'badRevocationReason',
  storageUnavailable: 'unavailable',
  // A token door's limit; ACME counts its own (orders per account), but the type fits either.
  rateLimited: 'rateLimited',
  // Not reached through ACME, or ours to fix: the token and mutual-TLS doors' refusals, the
  // operator's (policy, template, ceremony) and the CA's own failures.
  tokenMalformed: null,
  tokenSignature: null,
  tokenExpired: null,
  tokenAudience: null,
  tokenLifetime: null,
  tokenReplayed: null,
  tokenUnsigned: null,
  tokenSymmetric: null,
  tokenKeyMismatch: null,
  tokenUnknownKey: null,
  tokenIssuer: null,
  tokenTooOld: null,
  keysUnavailable: null,
  noNames: null,
  unknownProvisionerType: null,
  badProvisionerOptions: null,
  templateClaimMissing: null,
  templateClaimInvalid: null,
  clientCertificateRequired: null,
  certificateUnknown: null,
  certificateExpired: null,
  certificateNotFound: null,
  certificateRevoked: null,
  lineageExpired: null,
  renewalNotAllowed: null,
  notAuthorized: null,
  issuerUnavailable: null,
  rootKeyRefused: null,
  issuerMismatch: null,
  widerNameConstraints: null,
  badPolicy: null,
  badTemplate: null,
  badCrl: null,
  internal: null,
};

/**
 * The one translation of a domain error into an ACME error, or null for a failure of ours
 * (serverInternal: the caller logs the cause and sends nothing of it). The store's own
 * unavailability is the same 503 as the authority's.
 */
export function acmeErrorFor(err: unknown): AcmeError | null {
  if (err instanceof AcmeError) return err;
  const row =
    err instanceof AuthorityError
      ? AUTHORITY_TO_ACME[err.code]
      : err instanceof StoreError && err.code === 'storageUnavailable'
        ? 'unavailable'
        : null;
  if (row === null) return null;
  if (row === 'unavailable')
    return new AcmeError('serverInternal', 'the CA database is unavailable; try again shortly', {
      status: 503,
      headers: { 'Retry-After': '5' },
      cause: err,
    });
  const retryAfterS = err instanceof AuthorityError ? err.retryAfterS : undefined;
  return new AcmeError(row, (err as Error).message, {
    cause: err,
    ...(retryAfterS === undefined ? {} : { headers: { 'Retry-After': String(retryAfterS) } }),
  });
}
