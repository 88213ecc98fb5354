import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AuthorityError, type Authority } from '@shortleaf/authority';
import { AUD, createTestCa, makeCsr, type TestCa } from '../../authority/src/test-fixtures.js';
import { createApiApp } from './app.js';
import { PROBLEM_TYPE_PREFIX } from './problems.js';

// A per-identity limit reached (--max-certificates-per-identity) is a 429 telling the client when
// the window has room again, not a 4xx to give up on.
describe('rateLimited on the REST door', () => {
  let ca: TestCa;
  before(async () => {
    ca = await createTestCa();
  });
  after(() => ca.close());

  it('is a 429 problem document with the refusal’s own Retry-After', async () => {
    const refusal = new AuthorityError('rateLimited', 'the limit is 2/1h', { retryAfterS: 2400 });
    const authority = Object.create(ca.authority, {
      sign: { value: async () => Promise.reject(refusal) },
    }) as Authority;
    const app = createApiApp({
      authority,
      signAudiences: [AUD],
      clientCertificate: () => null,
      requester: () => 'test',
      roots: [ca.root.certificate.der],
      logger: ca.logger,
      maxBodyBytes: 64 * 1024,
    });
    const res = await app.request('/api/v1/sign', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ csr: makeCsr(['a.internal']).pem, token: 'x' }),
    });
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), '2400');
    assert.equal(res.headers.get('content-type'), 'application/problem+json');
    const problem = (await res.json()) as { type: string; detail: string };
    assert.equal(problem.type, `${PROBLEM_TYPE_PREFIX}rateLimited`);
    assert.equal(problem.detail, 'the limit is 2/1h');
  });
});
