import { keyIdentifier, type Signer } from './crypto.js';
import { bitString, generalizedTime, octetString, oid, sequence, tlv } from './der.js';
import { algorithmIdentifier, wrap } from './encode.js';
import type { CertId } from './ocsp-request.js';
import { reasonCode, type RevocationReason } from './revocation-reasons.js';

/** CertStatus (RFC 6960 §4.2.1). */
export type OcspCertStatus =
  { kind: 'good' } | { kind: 'revoked'; revokedAt: Date; reason: RevocationReason } | { kind: 'unknown' };

export interface OcspSingleResponse {
  certId: CertId;
  status: OcspCertStatus;
  thisUpdate: Date;
  nextUpdate: Date;
}

/** The delegated responder (RFC 6960 §4.2.2.2) that signs responses for one CA. */
export interface OcspResponder {
  signer: Signer;
  /** Its certificate, issued by the CA with id-kp-OCSPSigning; sent in `certs` so clients can verify. */
  certificateDer: Uint8Array;
}

const ID_PKIX_OCSP_BASIC = oid('1.3.6.1.5.5.7.48.1.1');
const ID_PKIX_OCSP_NONCE = oid('1.3.6.1.5.5.7.48.1.2');
// certStatus good [0] IMPLICIT NULL and unknown [2] IMPLICIT NULL.
const GOOD = Uint8Array.of(0x80, 0x00);
const UNKNOWN = Uint8Array.of(0x82, 0x00);
const SUCCESSFUL = Uint8Array.of(0x0a, 0x01, 0x00);

/**
 * The responder's KeyHash for ResponderID byKey (RFC 6960 §4.2.1): SHA-1 of the subjectPublicKey
 * BIT STRING's value, which is also its subject key identifier.
 */
export function responderKeyHash(signerSpki: Uint8Array): Uint8Array {
  return keyIdentifier(signerSpki);
}

// What stays the same from one response to the next, encoded once per signer and certificate:
// responses are signed on every revocation and cache refresh, and building them should cost
// little more than the signature.
const signerParts = new WeakMap<Signer, { responderId: Uint8Array; algorithm: Uint8Array }>();
const certsFields = new WeakMap<Uint8Array, Uint8Array>();

function partsOf(responder: OcspResponder): { responderId: Uint8Array; algorithm: Uint8Array; certs: Uint8Array } {
  let fixed = signerParts.get(responder.signer);
  if (fixed === undefined) {
    fixed = {
      // ResponderID byKey [2] EXPLICIT KeyHash
      responderId: tlv(0xa2, octetString(responderKeyHash(responder.signer.publicKey.spki))),
      algorithm: algorithmIdentifier(responder.signer.algorithm),
    };
    signerParts.set(responder.signer, fixed);
  }
  let certs = certsFields.get(responder.certificateDer);
  if (certs === undefined) {
    // certs [0] EXPLICIT SEQUENCE OF Certificate
    certs = wrap(0xa0, [wrap(0x30, [responder.certificateDer])]);
    certsFields.set(responder.certificateDer, certs);
  }
  return { ...fixed, certs };
}

function certStatus(status: OcspCertStatus): Uint8Array {
  switch (status.kind) {
    case 'good':
      return GOOD;
    case 'unknown':
      return UNKNOWN;
    case 'revoked': {
      // RevokedInfo { revocationTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }; like the
      // CRL (RFC 5280 §5.3.1), leave the reason out rather than say unspecified.
      const code = reasonCode(status.reason);
      const reason = code === 0 ? [] : [tlv(0xa0, tlv(0x0a, Uint8Array.of(code)))];
      return wrap(0xa1, [generalizedTime(status.revokedAt), ...reason]);
    }
  }
}

function singleResponse(r: OcspSingleResponse): Uint8Array {
  // The CertID is echoed byte for byte: clients match it against what they sent.
  return wrap(0x30, [
    r.certId.der,
    certStatus(r.status),
    generalizedTime(r.thisUpdate),
    wrap(0xa0, [generalizedTime(r.nextUpdate)]),
  ]);
}

/**
 * Builds and signs a successful OCSPResponse carrying a BasicOCSPResponse (RFC 6960 §4.2.1, the
 * RFC 5019 profile): responder identified by key hash, the responder's certificate included, and
 * the request's nonce extension value echoed byte for byte when there was one (RFC 9654; `nonce`
 * is `OcspRequest.nonce`, extnValue as the client sent it). Times are whole seconds.
 */
export function buildOcspResponse(input: {
  responder: OcspResponder;
  producedAt: Date;
  responses: OcspSingleResponse[];
  nonce: Uint8Array | null;
}): Uint8Array {
  const { responderId, algorithm, certs } = partsOf(input.responder);
  // responseExtensions [1] EXPLICIT { nonce: extnValue is the request's, unchanged }
  const nonce =
    input.nonce === null
      ? []
      : [wrap(0xa1, [wrap(0x30, [wrap(0x30, [ID_PKIX_OCSP_NONCE, wrap(0x04, [input.nonce])])])])];
  const tbs = wrap(0x30, [
    // version v1 is the DEFAULT, so DER leaves it out.
    responderId,
    generalizedTime(input.producedAt),
    wrap(0x30, input.responses.map(singleResponse)),
    ...nonce,
  ]);
  const basic = wrap(0x30, [tbs, algorithm, bitString(input.responder.signer.sign(tbs)), certs]);
  return wrap(0x30, [SUCCESSFUL, wrap(0xa0, [wrap(0x30, [ID_PKIX_OCSP_BASIC, wrap(0x04, [basic])])])]);
}

// OCSPResponseStatus (RFC 6960 §4.2.1); 4 is unused.
const ERROR_STATUS = { malformedRequest: 1, internalError: 2, tryLater: 3, sigRequired: 5, unauthorized: 6 } as const;

/** An unsigned OCSPResponse with an error status and no responseBytes (RFC 6960 §2.3). */
export function ocspErrorResponse(
  status: 'malformedRequest' | 'internalError' | 'tryLater' | 'sigRequired' | 'unauthorized',
): Uint8Array {
  const code: number | undefined = Object.hasOwn(ERROR_STATUS, status) ? ERROR_STATUS[status] : undefined;
  // An unknown status must not encode as 0, "successful" without a response.
  if (code === undefined) throw new TypeError(`${String(status)} is not an OCSP error status`);
  return sequence(tlv(0x0a, Uint8Array.of(code)));
}
