import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createSigner, generateKeyPair } from './crypto.js';
import { readTlv } from './der.js';
import { signTbs } from './encode.js';
import { createCsr, csrToPem, parseCsr } from './csr.js';
import { PkiError } from './errors.js';
import { parseName } from './names.js';
import { isProgrammingError, mutate, mutationsArb } from './test-mutations.js';

const RUNS = 10_000;
/** A parse of a CSR under 16 KiB is microseconds of DER and one signature check. */
// Generous so a loaded CI machine does not fail it; a hang or a quadratic blow-up still does.
const SLOW_MS = 1_000;

const ecKey = generateKeyPair('EC-P256').privateKey;
const csrs = [
  createCsr(ecKey, { commonName: 'svc.internal' }, [
    parseName('svc.internal'),
    parseName('10.0.0.1'),
    parseName('*.svc.internal'),
  ]),
  createCsr(generateKeyPair('Ed25519').privateKey, { commonName: null }, [parseName('a.internal')]),
  createCsr(generateKeyPair('RSA').privateKey, { commonName: 'rsa.internal', organization: 'Ops' }, []),
];

/** Parses, and fails the property on anything but a PkiError (a wrapped TypeError included) or a slow answer. */
function onlyPkiErrors(input: string | Uint8Array): void {
  const started = performance.now();
  try {
    parseCsr(input);
  } catch (err) {
    assert.ok(err instanceof PkiError, `parseCsr threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
    assert.ok(!isProgrammingError(err), `parseCsr wrapped a programming error: ${String((err as Error).cause)}`);
  }
  const took = performance.now() - started;
  assert.ok(took < SLOW_MS, `parseCsr took ${took.toFixed(1)} ms`);
}

describe('parseCsr on hostile input (property)', () => {
  it('parses the valid CSRs the mutations start from', () => {
    for (const der of csrs) parseCsr(der);
  });

  it(`throws only PkiError, quickly, for ${RUNS} mutated DER CSRs`, () => {
    fc.assert(
      fc.property(fc.constantFrom(...csrs), mutationsArb, (der, mutations) => onlyPkiErrors(mutate(der, mutations))),
      { numRuns: RUNS },
    );
  });

  // A mutated CSR almost always fails its signature first; re-signing the mutated
  // CertificationRequestInfo gets the mutations past it, into the subject and the SAN parsing.
  it(`throws only PkiError, quickly, for ${RUNS} mutated CertificationRequestInfos signed with the CSR's key`, () => {
    const der = csrs[0]!;
    const outer = readTlv(der, 0);
    const infoTlv = readTlv(der, outer.contentStart);
    const info = der.slice(infoTlv.start, infoTlv.end);
    const signer = createSigner(ecKey);
    fc.assert(
      fc.property(mutationsArb, (mutations) => onlyPkiErrors(signTbs(mutate(info, mutations), signer))),
      { numRuns: RUNS },
    );
  });

  it(`throws only PkiError, quickly, for ${RUNS} mutated PEM CSRs and arbitrary text`, () => {
    const pems = csrs.map((der) => new TextEncoder().encode(csrToPem(der)));
    fc.assert(
      fc.property(
        fc.oneof(
          fc
            .tuple(fc.constantFrom(...pems), mutationsArb)
            .map(([pem, m]) => Buffer.from(mutate(pem, m)).toString('latin1')),
          fc.string({ maxLength: 200 }),
          fc.uint8Array({ maxLength: 300 }),
        ),
        (input) => onlyPkiErrors(input),
      ),
      { numRuns: RUNS },
    );
  });
});
