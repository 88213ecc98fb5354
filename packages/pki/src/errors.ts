/** Stable codes for every way X.509 input or issuance can be refused by the PKI core. */
export type PkiErrorCode =
  | 'badPem'
  | 'badDer'
  | 'badCsr'
  | 'badCsrSignature'
  | 'unsupportedKey'
  | 'weakKey'
  | 'unsupportedAlgorithm'
  | 'badName'
  | 'badSubject'
  | 'badExtKeyUsage'
  | 'lintFailed'
  | 'badCertificate'
  | 'badRevocationReason'
  | 'badCrl'
  | 'badOcspRequest';

/**
 * The one error type the PKI core throws. Callers switch on `code`; `message` is written for the
 * person who sent the input, so it names what was wrong and never echoes secret material.
 */
export class PkiError extends Error {
  override readonly name = 'PkiError';
  readonly code: PkiErrorCode;

  constructor(code: PkiErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
