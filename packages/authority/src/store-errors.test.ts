import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StoreError, type StoreErrorCode } from '@shortleaf/store/contracts';
import { AuthorityError, type AuthorityErrorCode } from './errors.js';
import { fromStoreError } from './store-errors.js';

// What each store code becomes, per write. Keyed by the union, so tsc fails here too when the
// store gains a code: decide what it means to the authority's callers, then add its row.
// `cause` is a store failure passed on as it is (revocation); `internal` an AuthorityError('internal').
const EXPECTED: Record<StoreErrorCode, { issue: AuthorityErrorCode; revoke: AuthorityErrorCode | 'cause' }> = {
  tokenReplayed: { issue: 'tokenReplayed', revoke: 'tokenReplayed' },
  storageUnavailable: { issue: 'storageUnavailable', revoke: 'storageUnavailable' },
  keyBlocked: { issue: 'keyBlocked', revoke: 'keyBlocked' },
  revoked: { issue: 'certificateRevoked', revoke: 'certificateRevoked' },
  notFound: { issue: 'internal', revoke: 'certificateNotFound' },
  serialCollision: { issue: 'internal', revoke: 'cause' },
  conflict: { issue: 'internal', revoke: 'cause' },
  eabKeyUsed: { issue: 'internal', revoke: 'cause' },
  migrationFailed: { issue: 'internal', revoke: 'cause' },
  schemaTooNew: { issue: 'internal', revoke: 'cause' },
  unsealFailed: { issue: 'internal', revoke: 'cause' },
  notShortleafDatabase: { issue: 'internal', revoke: 'cause' },
};

describe('store errors in the authority’s terms', () => {
  for (const [code, expected] of Object.entries(EXPECTED) as Array<
    [StoreErrorCode, (typeof EXPECTED)[StoreErrorCode]]
  >) {
    it(`${code}: ${expected.issue} at issuance, ${expected.revoke} at revocation, the store error kept as cause`, () => {
      const cause = new StoreError(code, `store says ${code}`);
      const issued = fromStoreError(cause, { action: 'issue' });
      assert.ok(issued instanceof AuthorityError);
      assert.equal(issued.code, expected.issue);
      assert.equal(issued.cause, cause);
      const revoked = fromStoreError(cause, { action: 'revoke', serial: 'abc123' });
      if (expected.revoke === 'cause') {
        assert.equal(revoked, cause);
      } else {
        assert.ok(revoked instanceof AuthorityError);
        assert.equal(revoked.code, expected.revoke);
        assert.equal(revoked.cause, cause);
      }
    });
  }

  it('says what was not done, in the words of the write', () => {
    const down = new StoreError('storageUnavailable', 'SQLITE_BUSY');
    assert.equal(
      (fromStoreError(down, { action: 'issue' }) as Error).message,
      'the certificate store is unavailable; nothing was issued',
    );
    assert.equal(
      (fromStoreError(down, { action: 'revoke', serial: 'ab' }) as Error).message,
      'the certificate store is unavailable; nothing was revoked',
    );
    const missing = new StoreError('notFound', 'no issued certificate with serial ab');
    assert.equal(
      (fromStoreError(missing, { action: 'revoke', serial: 'ab' }) as Error).message,
      'no certificate with serial ab was issued here',
    );
  });

  it('a failure that is not the store’s: internal at issuance, passed on at revocation', () => {
    const bug = new TypeError('x is undefined');
    const issued = fromStoreError(bug, { action: 'issue' });
    assert.ok(issued instanceof AuthorityError && issued.code === 'internal' && issued.cause === bug);
    assert.equal(fromStoreError(bug, { action: 'revoke', serial: 'ab' }), bug);
  });
});
