import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AuthorityError, type Authority, type AuthorityErrorCode } from '@shortleaf/authority';
import { PkiError, type PkiErrorCode } from '@shortleaf/pki';
import {
  AUD,
  addProvisioner,
  createTestCa,
  makeCsr,
  mint,
  unchanged,
  type TestCa,
} from '../../authority/src/test-fixtures.js';
import { createApiApp } from './app.js';
import { PROBLEM_TYPE_PREFIX } from './problems.js';

// Codes the REST table used not to list, so they went out as a bare 500. Each now has its status.
const FORMERLY_UNMAPPED: Array<[AuthorityErrorCode | PkiErrorCode, number]> = [
  ['badPolicy', 400],
  ['badTemplate', 400],
  ['rootKeyRefused', 400],
  ['issuerMismatch', 400],
  ['widerNameConstraints', 400],
  ['unknownProvisionerType', 400],
  ['badProvisionerOptions', 400],
  ['badSubject', 400],
  ['badExtKeyUsage', 400],
  ['badOcspRequest', 400],
];
const PKI_CODES = new Set<string>(['badSubject', 'badExtKeyUsage', 'badOcspRequest', 'lintFailed']);

const post = (body: unknown): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

describe('REST statuses for codes that used to fall through to 500', () => {
  let ca: TestCa;
  before(async () => {
    ca = await createTestCa();
  });
  after(() => ca.close());

  /** The REST app over the real authority, except that sign refuses with `err`. */
  const refusingWith = (err: Error) => {
    const authority = Object.create(ca.authority, { sign: { value: async () => Promise.reject(err) } }) as Authority;
    return createApiApp({
      authority,
      signAudiences: [AUD],
      clientCertificate: () => null,
      requester: () => 'test',
      roots: [ca.root.certificate.der],
      logger: ca.logger,
      maxBodyBytes: 64 * 1024,
    });
  };

  it('a provisioner whose stored policy this version refuses: 400 badPolicy, nothing spent', async () => {
    const legacy = await addProvisioner(ca.store, 'legacy', { keyTypes: ['DSA'] });
    const app = createApiApp({
      authority: ca.authority,
      signAudiences: [AUD],
      clientCertificate: () => null,
      requester: () => 'test',
      roots: [ca.root.certificate.der],
      logger: ca.logger,
      maxBodyBytes: 64 * 1024,
    });
    await unchanged(ca, async () => {
      const res = await app.request(
        '/api/v1/sign',
        post({ csr: makeCsr(['api.internal']).pem, token: await mint(legacy, { subject: 'api.internal' }) }),
      );
      const body = (await res.json()) as Record<string, unknown>;
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(body.type, `${PROBLEM_TYPE_PREFIX}badPolicy`);
      assert.match(String(body.detail), /DSA/);
    });
  });

  for (const [code, status] of FORMERLY_UNMAPPED) {
    it(`${code}: ${status} with its own type and the message as detail`, async () => {
      const err = PKI_CODES.has(code)
        ? new PkiError(code as PkiErrorCode, `refused as ${code}`)
        : new AuthorityError(code as AuthorityErrorCode, `refused as ${code}`);
      const res = await refusingWith(err).request('/api/v1/sign', post({ csr: 'x', token: 'y' }));
      assert.equal(res.status, status);
      assert.equal(res.headers.get('content-type'), 'application/problem+json');
      const body = (await res.json()) as Record<string, unknown>;
      assert.deepEqual(
        { ...body, title: typeof body.title },
        { type: `${PROBLEM_TYPE_PREFIX}${code}`, title: 'string', status, detail: `refused as ${code}` },
      );
    });
  }

  for (const code of ['lintFailed', 'internal'] as const) {
    it(`${code} stays a bug: a bare 500 whose detail says nothing, the cause in the log`, async () => {
      const err =
        code === 'lintFailed'
          ? new PkiError(code, 'certificate failed lint: secret detail')
          : new AuthorityError(code, 'secret detail');
      const res = await refusingWith(err).request('/api/v1/sign', post({ csr: 'x', token: 'y' }));
      const body = (await res.json()) as Record<string, unknown>;
      assert.equal(res.status, 500);
      assert.equal(body.type, `${PROBLEM_TYPE_PREFIX}internal`);
      assert.ok(!String(body.detail).includes('secret'));
      assert.ok(
        ca.logger.lines.some((l) => l.event === 'request_failed' && String(l.fields?.error).includes('secret detail')),
      );
    });
  }
});
