import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { REVOCATION_REASONS, reasonCode, reasonName } from './revocation-reasons.js';
import { assertPkiError } from './test-fixtures.js';

describe('revocation reasons (RFC 5280 §5.3.1)', () => {
  it('maps every name to its CRLReason code and back', () => {
    const codes = REVOCATION_REASONS.map(reasonCode);
    assert.deepEqual(codes, [0, 1, 2, 3, 4, 5, 6, 9, 10]);
    assert.deepEqual(codes.map(reasonName), [...REVOCATION_REASONS]);
    assert.equal(reasonCode('keyCompromise'), 1);
    assert.equal(reasonName(10), 'aACompromise');
  });

  it('refuses removeFromCRL by name and by code, saying it belongs to delta CRLs', () => {
    assertPkiError(
      () => reasonCode('removeFromCRL'),
      'badRevocationReason',
      /removeFromCRL .*delta CRLs.*never accepted/,
    );
    assertPkiError(() => reasonName(8), 'badRevocationReason', /removeFromCRL .*delta CRLs/);
  });

  it('refuses unknown names, the unused code 7 and codes out of range', () => {
    assertPkiError(
      () => reasonCode('KeyCompromise'),
      'badRevocationReason',
      /"KeyCompromise" is not a revocation reason \(use one of unspecified, keyCompromise/,
    );
    assertPkiError(() => reasonCode('constructor'), 'badRevocationReason', 'is not a revocation reason');
    for (const code of [7, 11, -1, 1.5])
      assertPkiError(() => reasonName(code), 'badRevocationReason', `${code} is not a CRLReason code`);
  });
});
