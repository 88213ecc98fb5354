import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuthorityError, type AuthorityErrorCode } from '@shortleaf/authority';
import { PkiError, type PkiErrorCode } from '@shortleaf/pki';
import { StoreError } from '@shortleaf/store/contracts';
import {
  ApiError,
  PROBLEMS,
  PROBLEM_TYPE_PREFIX,
  toProblem,
  type ApiErrorCode,
  type ProblemTable,
} from './problems.js';

// Each union spelled out once as a record, which tsc checks both ways (a missing or an unknown
// code is an error), so the runtime checks below walk every code there is.
const API_CODES: Record<ApiErrorCode, true> = {
  badJson: true,
  badRequest: true,
  unsupportedMediaType: true,
  bodyTooLarge: true,
  notFound: true,
  methodNotAllowed: true,
};
const AUTHORITY_CODES: Record<AuthorityErrorCode, true> = {
  rateLimited: true,
  tokenMalformed: true,
  tokenSignature: true,
  tokenExpired: true,
  tokenAudience: true,
  tokenLifetime: true,
  tokenReplayed: true,
  tokenUnsigned: true,
  tokenSymmetric: true,
  tokenKeyMismatch: true,
  tokenUnknownKey: true,
  tokenIssuer: true,
  tokenTooOld: true,
  keysUnavailable: true,
  noNames: true,
  unknownProvisioner: true,
  unknownProvisionerType: true,
  badProvisionerOptions: true,
  nameNotAllowed: true,
  csrNameNotAuthorized: true,
  keyTypeNotAllowed: true,
  badLifetime: true,
  lifetimeTooLong: true,
  lifetimeTooShort: true,
  clientCertificateRequired: true,
  certificateUnknown: true,
  certificateExpired: true,
  issuerUnavailable: true,
  rootKeyRefused: true,
  issuerMismatch: true,
  widerNameConstraints: true,
  badPolicy: true,
  badTemplate: true,
  templateClaimMissing: true,
  templateClaimInvalid: true,
  badRevocationReason: true,
  badCrl: true,
  certificateNotFound: true,
  certificateRevoked: true,
  keyBlocked: true,
  lineageExpired: true,
  renewalNotAllowed: true,
  notAuthorized: true,
  storageUnavailable: true,
  internal: true,
};
const PKI_CODES: Record<PkiErrorCode, true> = {
  badPem: true,
  badDer: true,
  badCsr: true,
  badCsrSignature: true,
  unsupportedKey: true,
  weakKey: true,
  unsupportedAlgorithm: true,
  badName: true,
  badSubject: true,
  badExtKeyUsage: true,
  lintFailed: true,
  badCertificate: true,
  badRevocationReason: true,
  badCrl: true,
  badOcspRequest: true,
};

/** Codes that are bugs or failures the client cannot act on: a bare 500. */
const INTERNAL_CODES = new Set(['internal', 'lintFailed']);

describe('REST problem table', () => {
  it('a table missing a code does not compile', () => {
    const { badSubject: _dropped, ...missingOne } = PROBLEMS;
    // @ts-expect-error badSubject has no row: a code nobody maps must not become a silent 500.
    const incomplete: ProblemTable = missingOne;
    assert.equal(Object.hasOwn(incomplete, 'badSubject'), false);
  });

  it('an unknown code has no place in the table either', () => {
    // @ts-expect-error only codes of the unions are rows; a typo is not a new code.
    const extra: ProblemTable = { ...PROBLEMS, badSubjekt: { status: 400, title: 'typo' } };
    assert.ok(Object.hasOwn(extra, 'badSubjekt'));
  });

  const cases: Array<[string, string[], (code: string) => Error]> = [
    ['ApiError', Object.keys(API_CODES), (code) => new ApiError(code as ApiErrorCode, `refused: ${code}`)],
    [
      'AuthorityError',
      Object.keys(AUTHORITY_CODES),
      (code) => new AuthorityError(code as AuthorityErrorCode, `refused: ${code}`),
    ],
    ['PkiError', Object.keys(PKI_CODES), (code) => new PkiError(code as PkiErrorCode, `refused: ${code}`)],
  ];
  for (const [name, codes, make] of cases) {
    it(`every ${name} code has a row, and only internal ones become a 500`, () => {
      for (const code of codes) {
        assert.ok(Object.hasOwn(PROBLEMS, code), `${code} has no row`);
        const { problem, internal } = toProblem(make(code));
        if (INTERNAL_CODES.has(code)) {
          assert.deepEqual(
            { type: problem.type, status: problem.status, internal },
            { type: `${PROBLEM_TYPE_PREFIX}internal`, status: 500, internal: true },
            code,
          );
          assert.ok(!problem.detail.includes(code), 'an internal problem carries no detail');
        } else {
          assert.equal(problem.type, `${PROBLEM_TYPE_PREFIX}${code}`);
          assert.ok(
            problem.status >= 400 && problem.status < 600 && problem.status !== 500,
            `${code}: ${problem.status}`,
          );
          assert.equal(problem.detail, `refused: ${code}`);
          assert.equal(internal, false);
        }
      }
    });
  }

  it('the table has no row beyond the unions', () => {
    const known = new Set([...Object.keys(API_CODES), ...Object.keys(AUTHORITY_CODES), ...Object.keys(PKI_CODES)]);
    assert.deepEqual(
      Object.keys(PROBLEMS).filter((code) => !known.has(code)),
      [],
    );
  });

  it('anything that is not a domain error is a bare 500', () => {
    const { problem, internal } = toProblem(new Error('SQLITE_CORRUPT at /var/lib/shortleaf'));
    assert.equal(internal, true);
    assert.equal(problem.status, 500);
    assert.ok(!problem.detail.includes('SQLITE'));
  });

  // A read the authority does not translate (a provisioner, a certificate) meets the database in
  // a restart: the client is told to retry, as for the authority's own storageUnavailable.
  it("the store's outage, raised by any read, is a retriable 503, not a 500", () => {
    const { problem, internal } = toProblem(new StoreError('storageUnavailable', 'connection refused to 10.0.0.5'));
    assert.equal(internal, false);
    assert.deepEqual(
      { type: problem.type, status: problem.status },
      { type: `${PROBLEM_TYPE_PREFIX}storageUnavailable`, status: 503 },
    );
    assert.ok(!problem.detail.includes('10.0.0.5'), 'the store message stays in the log');
    assert.equal(toProblem(new StoreError('conflict', 'x')).internal, true, 'other store failures are internal');
  });
});
