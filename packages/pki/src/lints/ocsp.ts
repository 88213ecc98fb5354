import { Buffer } from 'node:buffer';
import { algorithmIdentifier } from '../encode.js';
import type { CertId } from '../ocsp-request.js';
import { responderKeyHash, type OcspCertStatus, type OcspResponder } from '../ocsp-response.js';
import { reasonCode } from '../revocation-reasons.js';

/** One SingleResponse as read back from the bytes. */
export interface OcspSingleView {
  certIdDer: Uint8Array;
  status: { kind: 'good' } | { kind: 'unknown' } | { kind: 'revoked'; revokedAt: Date; reasonCode: number | null };
  thisUpdate: Date;
  nextUpdate: Date | null;
}

/** A signed OCSP response as the lints read it back from its bytes. */
export interface OcspResponseView {
  /** ResponderID byKey (RFC 6960 §4.2.2.3), or null when it is byName. */
  responderKeyHash: Uint8Array | null;
  signatureAlgorithmDer: Uint8Array;
  certs: Uint8Array[];
  responses: OcspSingleView[];
  /** The nonce extension's extnValue content, or null without one. */
  nonce: Uint8Array | null;
}

/** What a response is checked against: who signs, what was asked, what was decided, and when. */
export interface OcspLintContext {
  responder: OcspResponder;
  now: Date;
  certIds: readonly CertId[];
  statuses: readonly OcspCertStatus[];
  /** The request's nonce extnValue, or null when it sent none. */
  nonce: Uint8Array | null;
}

/** One concern checked on an OCSP response's bytes when it is signed (never per cache hit). */
export interface OcspLint {
  name: string;
  check(view: OcspResponseView, ctx: OcspLintContext): string | null;
}

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(b);

// What the lints expect of a signer, computed once per signer: responses are linted as they are
// signed, and the lint should cost little beside the signature.
const expected = new WeakMap<OcspResponder['signer'], { keyHash: Uint8Array; algorithm: Uint8Array }>();
function expectedOf(signer: OcspResponder['signer']): { keyHash: Uint8Array; algorithm: Uint8Array } {
  let e = expected.get(signer);
  if (e === undefined) {
    e = { keyHash: responderKeyHash(signer.publicKey.spki), algorithm: algorithmIdentifier(signer.algorithm) };
    expected.set(signer, e);
  }
  return e;
}

/** RFC 6960 §4.2.2.3: the ResponderID names the key that signs, the one we hold (byKey, as RFC 5019 §2.2.3 prefers). */
export const ocspResponderIdMatchesSigner: OcspLint = {
  name: 'ocsp_responder_id_matches_signer',
  check: (v, { responder }) => {
    if (v.responderKeyHash === null) return 'the ResponderID is not byKey';
    return same(v.responderKeyHash, expectedOf(responder.signer).keyHash)
      ? null
      : "the ResponderID is not the signing key's hash";
  },
};

/** RFC 6960 §4.2.2.2: a delegated responder sends its own certificate, and only it, so clients can verify. */
export const ocspCertsHoldResponderCertificate: OcspLint = {
  name: 'ocsp_certs_hold_responder_certificate',
  check: (v, { responder }) =>
    v.certs.length === 1 && same(v.certs[0]!, responder.certificateDer)
      ? null
      : "certs is not exactly the responder's certificate",
};

/** RFC 6960 §4.2.1: the signatureAlgorithm is the one the responder's key signs with. */
export const ocspSignatureAlgorithmMatchesSigner: OcspLint = {
  name: 'ocsp_signature_algorithm_matches_signer',
  check: (v, { responder }) =>
    same(v.signatureAlgorithmDer, expectedOf(responder.signer).algorithm)
      ? null
      : `the signature algorithm is not ${responder.signer.algorithm.name}`,
};

/** RFC 6960 §4.2.2.1 and RFC 5019 §4: every answer holds now, thisUpdate ≤ now < nextUpdate, and has a nextUpdate. */
export const ocspTimesCoverNow: OcspLint = {
  name: 'ocsp_times_cover_now',
  check: (v, { now }) => {
    for (const r of v.responses) {
      if (r.nextUpdate === null) return 'a SingleResponse has no nextUpdate';
      if (r.thisUpdate.getTime() > now.getTime()) return `thisUpdate ${r.thisUpdate.toISOString()} is after now`;
      if (r.nextUpdate.getTime() <= now.getTime()) return `nextUpdate ${r.nextUpdate.toISOString()} is not after now`;
    }
    return null;
  },
};

/** RFC 9654 §2.1 (RFC 6960 §4.4.1): the nonce is echoed byte for byte when the request had one, and absent otherwise. */
export const ocspNonceEchoed: OcspLint = {
  name: 'ocsp_nonce_echoed',
  check: (v, { nonce }) => {
    if (nonce === null) return v.nonce === null ? null : 'a nonce is answered that the request did not send';
    if (v.nonce === null) return "the request's nonce is not echoed";
    return same(v.nonce, nonce) ? null : "the echoed nonce is not the request's";
  },
};

/** RFC 6960 §4.2.2.3 (and §4.1.1): one SingleResponse per requested CertID, in order, each echoing its CertID exactly. */
export const ocspOneResponsePerCertId: OcspLint = {
  name: 'ocsp_one_response_per_cert_id',
  check: (v, { certIds }) => {
    if (v.responses.length !== certIds.length)
      return `${v.responses.length} SingleResponses for ${certIds.length} CertIDs`;
    const i = v.responses.findIndex((r, n) => !same(r.certIdDer, certIds[n]!.der));
    return i === -1 ? null : `SingleResponse ${i} does not echo CertID ${i}`;
  },
};

/**
 * RFC 6960 §4.2.1: each certStatus is what the responder decided: the kind, and for a revoked
 * certificate its revocation time (whole seconds, never after thisUpdate) and reason (left out
 * for unspecified, as RFC 5280 §5.3.1 does for CRLs).
 */
export const ocspCertStatusConsistent: OcspLint = {
  name: 'ocsp_cert_status_consistent',
  check: (v, { statuses }) => {
    for (const [i, r] of v.responses.entries()) {
      const want = statuses[i];
      if (want === undefined) continue;
      if (r.status.kind !== want.kind)
        return `SingleResponse ${i} says ${r.status.kind}, the responder decided ${want.kind}`;
      if (r.status.kind !== 'revoked' || want.kind !== 'revoked') continue;
      if (r.status.revokedAt.getTime() !== Math.floor(want.revokedAt.getTime() / 1000) * 1000)
        return `SingleResponse ${i} has another revocationTime`;
      if (r.status.revokedAt.getTime() > r.thisUpdate.getTime())
        return `SingleResponse ${i} was revoked after its thisUpdate`;
      const code = reasonCode(want.reason);
      if (r.status.reasonCode !== (code === 0 ? null : code)) return `SingleResponse ${i} has another revocationReason`;
    }
    return null;
  },
};

/** Every OCSP lint, run on each response as it is signed. */
export const OCSP_LINTS: readonly OcspLint[] = [
  ocspResponderIdMatchesSigner,
  ocspCertsHoldResponderCertificate,
  ocspSignatureAlgorithmMatchesSigner,
  ocspTimesCoverNow,
  ocspNonceEchoed,
  ocspOneResponsePerCertId,
  ocspCertStatusConsistent,
];
