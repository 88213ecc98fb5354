import assert from 'node:assert/strict';
import { request as httpRequest, Agent, createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { OcspAnswer } from '@shortleaf/authority';
import { PkiError, ocspErrorResponse, parseOcspRequest } from '@shortleaf/pki';
import { mutate, mutationsArb } from '@shortleaf/pki/test-mutations';
import { createOcspHttpHandler } from './ocsp-http.js';

const RUNS = 10_000;

/** RFC 6960 §4.2.1 OCSPResponseStatus values that carry no responseBytes. */
const ERROR_STATUSES = new Set([1, 2, 3, 5, 6]);

// A valid SHA-1 request (RFC 5019), as `openssl ocsp` sends it.
const VALID = Buffer.from(
  '30443042304030' + '3e303c300906052b0e03021a05000414' + '01'.repeat(20) + '0414' + '02'.repeat(20) + '0203123456',
  'hex',
);

let server: Server;
let port: number;
const agent = new Agent({ keepAlive: true, maxSockets: 8 });
const errors: string[] = [];
const statuses = new Map<number, number>();

before(async () => {
  assert.equal(parseOcspRequest(VALID).certIds.length, 1);
  // The responder's own contract: a request it cannot parse is malformedRequest; one for an issuer
  // it does not serve is unauthorized. The handler under test is the real one.
  const ocsp = async (der: Uint8Array): Promise<OcspAnswer> => {
    let outcome: 'malformedRequest' | 'unauthorized';
    try {
      parseOcspRequest(der);
      outcome = 'unauthorized';
    } catch (err) {
      if (!(err instanceof PkiError)) throw err;
      outcome = 'malformedRequest';
    }
    return { body: ocspErrorResponse(outcome), outcome, cache: null, hit: false };
  };
  const handle = createOcspHttpHandler({
    ocsp,
    now: () => new Date(),
    onError: (event, fields) => errors.push(`${event} ${JSON.stringify(fields)}`),
  });
  server = createServer((req, res) => {
    if (!handle(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
after(async () => {
  agent.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  console.log('statuses', Object.fromEntries([...statuses].sort()));
});

function send(
  method: 'GET' | 'POST',
  path: string,
  body?: Uint8Array,
): Promise<{ status: number; type: string | undefined; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent,
        headers:
          method === 'POST' ? { 'content-type': 'application/ocsp-request', 'content-length': body!.length } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** 200 with an OCSPResponse that is exactly SEQUENCE { ENUMERATED error status }, as RFC 6960 §4.2.1 has it. */
function assertOcspError(res: { status: number; type: string | undefined; body: Buffer }): void {
  statuses.set(res.body[4] ?? -1, (statuses.get(res.body[4] ?? -1) ?? 0) + 1);
  assert.equal(res.status, 200);
  assert.equal(res.type, 'application/ocsp-response');
  assert.equal(res.body.length, 5, res.body.toString('hex'));
  assert.deepEqual([...res.body.subarray(0, 4)], [0x30, 0x03, 0x0a, 0x01]);
  assert.ok(ERROR_STATUSES.has(res.body[4]!), `status ${res.body[4]}`);
}

describe('the OCSP HTTP handler on hostile input (property)', () => {
  it(`answers ${RUNS} mutated POST and GET requests with well-formed OCSP error responses`, async () => {
    await fc.assert(
      fc.asyncProperty(mutationsArb, fc.constantFrom('POST', 'GET', 'GET-url'), async (mutations, how) => {
        const der = mutate(VALID, mutations);
        if (der.length === 0) return;
        if (how === 'POST') return assertOcspError(await send('POST', '/ocsp', der));
        const b64 = Buffer.from(der).toString('base64');
        return assertOcspError(await send('GET', `/ocsp/${how === 'GET' ? b64 : encodeURIComponent(b64)}`));
      }),
      { numRuns: RUNS },
    );
    assert.deepEqual(errors, []);
  });

  it('answers GET paths that are not base64 with malformedRequest', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ minLength: 1, maxLength: 100 }).filter((s) => !/[\s?#]/.test(s)),
        async (path) => {
          const res = await send('GET', `/ocsp/${encodeURIComponent(path).replace(/%25/g, '%')}`);
          assertOcspError(res);
        },
      ),
      { numRuns: 2_000 },
    );
    assert.deepEqual(errors, []);
  });
});
