import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { signatureAlgorithmByOid } from './algorithms.js';
import { createSigner, generateKeyPair } from './crypto.js';
import { integer, nullValue, octetString, oid, sequence } from './der.js';
import { OCSP_LINTS, type OcspLintContext } from './lints/ocsp.js';
import { lintOcspResponse } from './ocsp-lint.js';
import { issuerHashes, minimalOcspRequest, parseOcspRequest, type CertId } from './ocsp-request.js';
import { buildOcspResponse, type OcspCertStatus, type OcspResponder } from './ocsp-response.js';
import { HOUR, NOW, at, makeIntermediate, makeOcspSigner, makeRoot, type TestCa } from './test-fixtures.js';

let int: TestCa;
let responder: OcspResponder;
let first: CertId;
let second: CertId;

/** A CertID (RFC 6960 §4.1.1) for a serial of `int`, as a client would send it. */
function certId(serial: number): CertId {
  const { nameHash, keyHash } = issuerHashes(int.cert, 'sha1');
  const der = sequence(
    sequence(oid('1.3.14.3.2.26'), nullValue()),
    octetString(nameHash),
    octetString(keyHash),
    integer(serial),
  );
  return parseOcspRequest(minimalOcspRequest({ der })).certIds[0]!;
}

before(() => {
  int = makeIntermediate(makeRoot());
  const signerCa = makeOcspSigner(int);
  responder = { signer: signerCa.signer, certificateDer: signerCa.der };
  first = certId(0x1234);
  second = certId(0x5678);
});

const REVOKED: OcspCertStatus = { kind: 'revoked', revokedAt: at(-HOUR), reason: 'keyCompromise' };
const NONCE = octetString(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));

function signed(o: { certIds?: CertId[]; statuses?: OcspCertStatus[]; nonce?: Uint8Array | null } = {}): {
  der: Uint8Array;
  ctx: OcspLintContext;
} {
  const certIds = o.certIds ?? [first];
  const statuses = o.statuses ?? certIds.map((): OcspCertStatus => ({ kind: 'good' }));
  const nonce = o.nonce ?? null;
  const der = buildOcspResponse({
    responder,
    producedAt: NOW,
    responses: certIds.map((c, i) => ({ certId: c, status: statuses[i]!, thisUpdate: NOW, nextUpdate: at(HOUR) })),
    nonce,
  });
  return { der, ctx: { responder, now: at(1000), certIds, statuses, nonce } };
}

interface Breakage {
  lint: string;
  what: string;
  /** The response as signed, and the context it is linted in; only one thing may be off. */
  make: () => { der: Uint8Array; ctx: OcspLintContext };
  reason: RegExp;
}

/** Lazy, since the CertIDs exist only once `before` has run. */
const withCtx =
  (patch: () => Partial<OcspLintContext>, o: () => Parameters<typeof signed>[0] = () => ({})) =>
  () => {
    const s = signed(o());
    return { der: s.der, ctx: { ...s.ctx, ...patch() } };
  };

const BREAKAGES: Breakage[] = [
  {
    lint: 'ocsp_parses',
    what: 'bytes that are no OCSP response',
    make: () => ({ ...signed(), der: signed().der.subarray(0, 20) }),
    reason: /does not parse/,
  },
  {
    lint: 'ocsp_responder_id_matches_signer',
    what: 'a ResponderID of a key we do not hold',
    make: () => {
      const s = signed();
      return {
        der: s.der,
        ctx: { ...s.ctx, responder: { ...responder, signer: createSigner(generateKeyPair('EC-P256').privateKey) } },
      };
    },
    reason: /not the signing key's hash/,
  },
  {
    lint: 'ocsp_certs_hold_responder_certificate',
    what: "another certificate than the responder's",
    make: () => {
      const s = signed();
      return { der: s.der, ctx: { ...s.ctx, responder: { ...responder, certificateDer: int.der } } };
    },
    reason: /not exactly the responder's certificate/,
  },
  {
    lint: 'ocsp_signature_algorithm_matches_signer',
    what: 'a signer whose key signs with another algorithm',
    make: () => {
      const s = signed();
      return {
        der: s.der,
        ctx: {
          ...s.ctx,
          responder: {
            ...responder,
            signer: { ...responder.signer, algorithm: signatureAlgorithmByOid('1.2.840.10045.4.3.3') },
          },
        },
      };
    },
    reason: /not ecdsa-with-SHA384/,
  },
  {
    lint: 'ocsp_times_cover_now',
    what: 'an answer whose nextUpdate has come',
    make: withCtx(() => ({ now: at(HOUR) })),
    reason: /is not after now/,
  },
  {
    lint: 'ocsp_times_cover_now',
    what: 'an answer whose thisUpdate is still to come',
    make: withCtx(() => ({ now: at(-1000) })),
    reason: /is after now/,
  },
  {
    lint: 'ocsp_nonce_echoed',
    what: 'a nonce the request did not send',
    make: withCtx(
      () => ({ nonce: null }),
      () => ({ nonce: NONCE }),
    ),
    reason: /did not send/,
  },
  {
    lint: 'ocsp_nonce_echoed',
    what: "a request's nonce left out",
    make: withCtx(() => ({ nonce: NONCE })),
    reason: /not echoed/,
  },
  {
    lint: 'ocsp_nonce_echoed',
    what: 'another nonce than the one sent',
    make: withCtx(
      () => ({ nonce: octetString(Uint8Array.of(9, 9, 9, 9, 9, 9, 9, 9)) }),
      () => ({ nonce: NONCE }),
    ),
    reason: /is not the request's/,
  },
  {
    lint: 'ocsp_one_response_per_cert_id',
    what: 'one answer for two CertIDs',
    make: withCtx(() => ({ certIds: [first, second], statuses: [{ kind: 'good' }, { kind: 'good' }] })),
    reason: /1 SingleResponses for 2 CertIDs/,
  },
  {
    lint: 'ocsp_one_response_per_cert_id',
    what: 'the CertIDs answered out of order',
    make: withCtx(
      () => ({ certIds: [second, first] }),
      () => ({ certIds: [first, second] }),
    ),
    reason: /SingleResponse 0 does not echo CertID 0/,
  },
  {
    lint: 'ocsp_cert_status_consistent',
    what: 'good where the responder decided revoked',
    make: withCtx(() => ({ statuses: [REVOKED] })),
    reason: /says good, the responder decided revoked/,
  },
  {
    lint: 'ocsp_cert_status_consistent',
    what: 'another revocation reason',
    make: withCtx(
      () => ({ statuses: [{ ...REVOKED, reason: 'superseded' }] }),
      () => ({ statuses: [REVOKED] }),
    ),
    reason: /another revocationReason/,
  },
];

describe('lintOcspResponse', () => {
  it('passes what buildOcspResponse signs: good, revoked (with and without a reason), unknown, several CertIDs, a nonce', () => {
    for (const o of [
      {},
      { statuses: [REVOKED] },
      { statuses: [{ ...REVOKED, reason: 'unspecified' as const }] },
      { statuses: [{ kind: 'unknown' as const }] },
      { certIds: [first, second], statuses: [REVOKED, { kind: 'good' as const }] },
      { nonce: NONCE },
    ]) {
      const s = signed(o);
      assert.deepEqual(lintOcspResponse(s.der, s.ctx), [], JSON.stringify(o));
    }
  });

  it('has a breaking case for every OCSP lint', () => {
    const names = ['ocsp_parses', ...OCSP_LINTS.map((l) => l.name)];
    assert.equal(new Set(names).size, names.length);
    assert.deepEqual([...new Set(BREAKAGES.map((b) => b.lint))].sort(), [...names].sort());
  });

  for (const b of BREAKAGES) {
    it(`${b.lint}: refuses ${b.what}`, () => {
      const { der, ctx } = b.make();
      const failures = lintOcspResponse(der, ctx);
      assert.equal(failures.length, 1, `exactly one lint should fail: ${JSON.stringify(failures)}`);
      assert.ok(failures[0]!.startsWith(`${b.lint}: `), failures[0]);
      assert.match(failures[0]!, b.reason);
    });
  }
});
