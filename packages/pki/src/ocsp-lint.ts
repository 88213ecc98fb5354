import { Buffer } from 'node:buffer';
import { oid, readChildren, readTlv, type Tlv } from './der.js';
import { PkiError } from './errors.js';
import { OCSP_LINTS, type OcspLintContext, type OcspResponseView, type OcspSingleView } from './lints/ocsp.js';

const BASIC = Buffer.from(oid('1.3.6.1.5.5.7.48.1.1'));
const NONCE = Buffer.from(oid('1.3.6.1.5.5.7.48.1.2'));

const bad = (message: string): PkiError => new PkiError('badDer', message);

function children(buf: Uint8Array, t: Tlv | undefined, tag: number, what: string): Tlv[] {
  if (t === undefined || t.tag !== tag) throw bad(`${what} is missing or mistagged`);
  return readChildren(buf, t);
}

/** GeneralizedTime YYYYMMDDHHMMSSZ, the only form RFC 6960 §4.2.2.1 responses use. */
function generalizedTime(buf: Uint8Array, t: Tlv | undefined): Date {
  if (t === undefined || t.tag !== 0x18 || t.end - t.contentStart !== 15)
    throw bad('a time is not GeneralizedTime YYYYMMDDHHMMSSZ');
  const s = Buffer.from(buf.subarray(t.contentStart, t.end)).toString('latin1');
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (m === null) throw bad(`time ${s} is malformed`);
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

function singleResponse(buf: Uint8Array, t: Tlv): OcspSingleView {
  const [certId, status, thisUpdate, ...rest] = children(buf, t, 0x30, 'SingleResponse');
  if (certId === undefined || status === undefined) throw bad('a SingleResponse is short');
  let view: OcspSingleView['status'];
  if (status.tag === 0x80) view = { kind: 'good' };
  else if (status.tag === 0x82) view = { kind: 'unknown' };
  else if (status.tag === 0xa1) {
    const [time, reason] = readChildren(buf, status);
    const code = reason === undefined ? null : readChildren(buf, reason)[0];
    view = {
      kind: 'revoked',
      revokedAt: generalizedTime(buf, time),
      reasonCode: code === undefined || code === null ? null : buf[code.contentStart]!,
    };
  } else throw bad('certStatus is none of good, revoked, unknown');
  const next = rest.find((x) => x.tag === 0xa0);
  return {
    certIdDer: buf.subarray(certId.start, certId.end),
    status: view,
    thisUpdate: generalizedTime(buf, thisUpdate),
    nextUpdate: next === undefined ? null : generalizedTime(buf, readChildren(buf, next)[0]),
  };
}

function nonceOf(buf: Uint8Array, t: Tlv | undefined): Uint8Array | null {
  if (t === undefined) return null;
  for (const ext of children(buf, readChildren(buf, t)[0], 0x30, 'responseExtensions')) {
    const parts = readChildren(buf, ext);
    const id = parts[0]!;
    if (Buffer.from(buf.subarray(id.start, id.end)).equals(NONCE)) {
      const value = parts[parts.length - 1]!;
      return buf.subarray(value.contentStart, value.end);
    }
  }
  return null;
}

/** Reads a successful OCSPResponse (RFC 6960 §4.2.1) back from its bytes for the lints. */
export function readOcspResponseView(der: Uint8Array): OcspResponseView {
  const [status, bytes] = children(der, readTlv(der, 0), 0x30, 'OCSPResponse');
  if (status?.tag !== 0x0a || der[status.contentStart] !== 0) throw bad('the response status is not successful');
  const [type, octets] = children(der, children(der, bytes, 0xa0, 'responseBytes')[0], 0x30, 'ResponseBytes');
  if (type === undefined || !Buffer.from(der.subarray(type.start, type.end)).equals(BASIC) || octets?.tag !== 0x04)
    throw bad('the response is not id-pkix-ocsp-basic');
  const basic = der.subarray(octets.contentStart, octets.end);
  const [tbs, algorithm, , certs] = children(basic, readTlv(basic, 0), 0x30, 'BasicOCSPResponse');
  if (algorithm === undefined) throw bad('BasicOCSPResponse has no signatureAlgorithm');
  const fields = children(basic, tbs, 0x30, 'ResponseData');
  let i = fields[0]?.tag === 0xa0 ? 1 : 0; // version [0], DEFAULT v1
  const responderId = fields[i++];
  const keyHash = responderId?.tag === 0xa2 ? readChildren(basic, responderId)[0] : undefined;
  generalizedTime(basic, fields[i++]); // producedAt
  const responses = children(basic, fields[i++], 0x30, 'responses').map((r) => singleResponse(basic, r));
  const extensions = fields[i]?.tag === 0xa1 ? fields[i] : undefined;
  return {
    responderKeyHash: keyHash === undefined ? null : basic.subarray(keyHash.contentStart, keyHash.end),
    signatureAlgorithmDer: basic.subarray(algorithm.start, algorithm.end),
    certs:
      certs === undefined
        ? []
        : children(basic, readChildren(basic, certs)[0], 0x30, 'certs').map((c) => basic.subarray(c.start, c.end)),
    responses,
    nonce: nonceOf(basic, extensions),
  };
}

/** Runs every OCSP lint on a response just signed; failures as `name: reason`. */
export function lintOcspResponse(der: Uint8Array, ctx: OcspLintContext): string[] {
  let view: OcspResponseView;
  try {
    view = readOcspResponseView(der);
  } catch (cause) {
    return [`ocsp_parses: the OCSP response does not parse: ${(cause as Error).message}`];
  }
  const failures: string[] = [];
  for (const lint of OCSP_LINTS) {
    const reason = lint.check(view, ctx);
    if (reason !== null) failures.push(`${lint.name}: ${reason}`);
  }
  return failures;
}
