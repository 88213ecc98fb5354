import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PROBLEM_TYPE_PREFIX, problemCode, problemType } from './problem-type.js';

describe('problem types', () => {
  it('a Shortleaf problem type is the prefix and the code, and reads back to the code', () => {
    assert.equal(problemType('tokenReplayed'), 'urn:shortleaf:problem:tokenReplayed');
    assert.equal(problemCode(`${PROBLEM_TYPE_PREFIX}keyBlocked`), 'keyBlocked');
  });

  it('a type without the prefix reads back as it is', () => {
    assert.equal(problemCode('urn:ietf:params:acme:error:badCSR'), 'urn:ietf:params:acme:error:badCSR');
    assert.equal(problemCode('unknown'), 'unknown');
    // Only a leading prefix counts: a code is never cut out of the middle of another type.
    assert.equal(problemCode(`x${PROBLEM_TYPE_PREFIX}keyBlocked`), `x${PROBLEM_TYPE_PREFIX}keyBlocked`);
  });
});
