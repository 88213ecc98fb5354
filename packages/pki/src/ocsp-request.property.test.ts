import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { integerBytes, nullValue, octetString, oid, sequence, tlv } from './der.js';
import { PkiError } from './errors.js';
import { parseOcspRequest } from './ocsp-request.js';
import { isProgrammingError, mutate, mutationsArb } from './test-mutations.js';

const RUNS = 10_000;
const SLOW_MS = 500;

const certId = (hashOid: string, length: number) =>
  sequence(
    sequence(oid(hashOid), nullValue()),
    octetString(new Uint8Array(length).fill(1)),
    octetString(new Uint8Array(length).fill(2)),
    integerBytes(Uint8Array.of(0x12, 0x34, 0x56)),
  );
const nonce = sequence(oid('1.3.6.1.5.5.7.48.1.2'), octetString(octetString(new Uint8Array(16).fill(7))));

/** Valid requests as clients send them: SHA-1 bare (RFC 5019), SHA-256 with version and a nonce. */
const requests = [
  sequence(sequence(sequence(sequence(certId('1.3.14.3.2.26', 20))))),
  sequence(
    sequence(
      tlv(0xa0, integerBytes(Uint8Array.of(0))),
      sequence(sequence(certId('2.16.840.1.101.3.4.2.1', 32))),
      tlv(0xa2, sequence(nonce)),
    ),
  ),
];

describe('parseOcspRequest on hostile input (property)', () => {
  it('parses the valid requests the mutations start from', () => {
    for (const der of requests) assert.equal(parseOcspRequest(der).certIds.length, 1);
  });

  it(`throws only badOcspRequest, quickly, for ${RUNS} mutated requests`, () => {
    fc.assert(
      fc.property(
        fc.oneof(
          {
            arbitrary: fc.tuple(fc.constantFrom(...requests), mutationsArb).map(([der, m]) => mutate(der, m)),
            weight: 9,
          },
          fc.uint8Array({ maxLength: 200 }),
        ),
        (der) => {
          const started = performance.now();
          try {
            parseOcspRequest(der);
          } catch (err) {
            assert.ok(
              err instanceof PkiError && err.code === 'badOcspRequest',
              `parseOcspRequest threw ${(err as Error)?.name}: ${(err as Error)?.message}`,
            );
            assert.ok(
              !isProgrammingError(err),
              `parseOcspRequest wrapped a programming error: ${String((err as Error).cause)}`,
            );
          }
          assert.ok(performance.now() - started < SLOW_MS);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
