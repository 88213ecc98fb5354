import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PROBLEM_TYPE_PREFIX } from '@shortleaf/client';
import { STATUS_PROBLEMS, statusProblem, type StatusProblemCode } from './problems.js';

describe('status listener problems', () => {
  it('each code goes out with its one status and the shared Shortleaf type', () => {
    for (const code of Object.keys(STATUS_PROBLEMS) as StatusProblemCode[]) {
      const { status, body } = statusProblem(code, `about ${code}`);
      assert.equal(status, STATUS_PROBLEMS[code]);
      assert.deepEqual(JSON.parse(body), {
        type: `${PROBLEM_TYPE_PREFIX}${code}`,
        title: code,
        status,
        detail: `about ${code}`,
      });
    }
    // A failure is 503: a relying party retries later; no status listener answer is a bare 500.
    assert.equal(statusProblem('internal', 'x').status, 503);
  });

  it('a code without a row does not compile', () => {
    // @ts-expect-error badOcspRequest is answered as an OCSP malformedRequest, never as a problem document
    const { status } = statusProblem('badOcspRequest', 'x');
    assert.equal(status, undefined, 'only the compiler stands between an unmapped code and a statusless answer');
  });
});
