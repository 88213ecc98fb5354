import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { Hono } from 'hono';
import { mutate, mutationsArb } from '@shortleaf/pki/test-mutations';
import {
  AUD,
  addProvisioner,
  createTestCa,
  makeCsr,
  mint,
  type TestCa,
  type TestProvisioner,
} from '../../authority/src/test-fixtures.js';
import { createApiApp } from './app.js';
import { PROBLEM_TYPE_PREFIX } from './problems.js';

const RUNS = 10_000;

let ca: TestCa;
let ops: TestProvisioner;
let app: Hono;
let csrPem: string;
const statuses = new Map<number, number>();

before(async () => {
  ca = await createTestCa();
  ops = await addProvisioner(ca.store, 'ops', { names: { dns: ['*.svc.internal'] } });
  app = createApiApp({
    authority: ca.authority,
    signAudiences: [AUD],
    clientCertificate: () => null,
    requester: () => 'test',
    roots: [ca.root.certificate.der],
    logger: ca.logger,
    maxBodyBytes: 64 * 1024,
  });
  csrPem = makeCsr(['a.svc.internal']).pem;
});
after(async () => {
  await ca.close();
  console.log('statuses', Object.fromEntries([...statuses].sort()));
});

/** Posts a body to /api/v1/sign: never 5xx, and every refusal an RFC 7807 problem of ours. */
async function sign(body: Uint8Array | string, contentType = 'application/json'): Promise<void> {
  const res = await app.request('https://ca.test:9443/api/v1/sign', {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
  });
  const text = await res.text();
  statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  assert.ok(res.status < 500, `/api/v1/sign answered ${res.status}: ${text}`);
  if (res.status >= 400) {
    assert.equal(res.headers.get('content-type'), 'application/problem+json', text);
    const problem = JSON.parse(text) as { type?: unknown; status?: unknown };
    assert.ok(typeof problem.type === 'string' && problem.type.startsWith(PROBLEM_TYPE_PREFIX), text);
    assert.equal(problem.status, res.status);
  }
}

const encode = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
const anyJson = fc.jsonValue({ maxDepth: 4 });

describe('POST /api/v1/sign on hostile input (property)', () => {
  it(`answers ${RUNS} mutated sign requests with problems, never 5xx`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          // the whole valid JSON body, byte-mutated
          mutationsArb.map((m) => ({ kind: 'body' as const, m })),
          // the CSR's PEM text, byte-mutated, under a valid token
          mutationsArb.map((m) => ({ kind: 'csr' as const, m })),
          // one field replaced by any JSON, or an extra field
          fc
            .tuple(fc.constantFrom('csr', 'token', 'notAfter', 'extra'), anyJson)
            .map(([field, value]) => ({ kind: 'field' as const, field, value })),
          // any JSON, or bytes, at all
          fc
            .oneof(anyJson.map(encode), fc.uint8Array({ maxLength: 200 }))
            .map((raw) => ({ kind: 'raw' as const, raw })),
        ),
        async (c) => {
          const valid = {
            csr: csrPem,
            token: await mint(ops, { subject: 'a.svc.internal', now: ca.clock.now() }),
            notAfter: '1h',
          };
          if (c.kind === 'body') return sign(mutate(encode(valid), c.m));
          if (c.kind === 'csr')
            return sign(
              encode({ ...valid, csr: Buffer.from(mutate(new TextEncoder().encode(csrPem), c.m)).toString('latin1') }),
            );
          if (c.kind === 'field') return sign(encode({ ...valid, [c.field]: c.value }));
          return sign(c.raw);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
