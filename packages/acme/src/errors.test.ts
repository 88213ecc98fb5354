import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuthorityError, type AuthorityErrorCode } from '@shortleaf/authority';
import { PkiError } from '@shortleaf/pki';
import { StoreError } from '@shortleaf/store/contracts';
import { ACME_ERRORS, AUTHORITY_TO_ACME, AcmeError, acmeErrorFor, type AcmeErrorType } from './errors.js';

// What every authority code is sent as over ACME, written out against the union (tsc fails here
// when a code is added): the type, 'unavailable' (503, retry) or null (serverInternal, logged).
const EXPECTED: Record<AuthorityErrorCode, AcmeErrorType | 'unavailable' | null> = {
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
  rateLimited: 'rateLimited',
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

describe('domain errors as ACME errors', () => {
  it('a table missing an authority code does not compile', () => {
    const { keyBlocked: _dropped, ...missingOne } = AUTHORITY_TO_ACME;
    // @ts-expect-error keyBlocked has no row: a code nobody maps must not become a silent serverInternal.
    const incomplete: typeof AUTHORITY_TO_ACME = missingOne;
    assert.equal(Object.hasOwn(incomplete, 'keyBlocked'), false);
  });

  for (const [code, expected] of Object.entries(EXPECTED) as Array<
    [AuthorityErrorCode, AcmeErrorType | 'unavailable' | null]
  >) {
    it(`${code}: ${expected ?? 'serverInternal (ours)'}`, () => {
      assert.ok(Object.hasOwn(AUTHORITY_TO_ACME, code));
      const err = new AuthorityError(code, `refused as ${code}`);
      const acme = acmeErrorFor(err);
      if (expected === null) return assert.equal(acme, null);
      assert.ok(acme instanceof AcmeError);
      if (expected === 'unavailable') {
        assert.deepEqual(
          { type: acme.type, status: acme.status, headers: acme.headers },
          { type: 'serverInternal', status: 503, headers: { 'Retry-After': '5' } },
        );
        assert.ok(!acme.message.includes(code), 'the store’s words stay in the log');
        return;
      }
      assert.deepEqual(
        { type: acme.type, status: acme.status, detail: acme.message },
        { type: expected, status: ACME_ERRORS[expected], detail: `refused as ${code}` },
      );
      assert.equal(acme.cause, err);
    });
  }

  it('the store being down is the same 503; any other store, PKI or plain error is ours', () => {
    assert.equal(acmeErrorFor(new StoreError('storageUnavailable', 'SQLITE_BUSY'))?.status, 503);
    assert.equal(acmeErrorFor(new StoreError('conflict', 'x')), null);
    assert.equal(acmeErrorFor(new PkiError('badCsr', 'x')), null);
    assert.equal(acmeErrorFor(new TypeError('x')), null);
    const own = new AcmeError('rateLimited', 'slow down');
    assert.equal(acmeErrorFor(own), own);
  });

  it("an authority's rateLimited keeps its Retry-After", () => {
    const acme = acmeErrorFor(new AuthorityError('rateLimited', 'the limit is 2/1h', { retryAfterS: 90 }));
    assert.equal(acme?.status, 429);
    assert.deepEqual(acme?.headers, { 'Retry-After': '90' });
  });
});
