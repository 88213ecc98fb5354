import { createHash } from 'node:crypto';
import type { CertificateInfo } from './certificate.js';
import { readChildren, readOid, readTlv, tlv, type Tlv } from './der.js';
import { PkiError } from './errors.js';
import { serialToHex } from './serial.js';

/** Hash algorithms a CertID may use (RFC 6960 §4.1.1; RFC 5019 §2.1.1 for SHA-1). */
export type OcspHash = 'sha1' | 'sha256' | 'sha384' | 'sha512';

interface HashRow {
  name: OcspHash;
  oid: string;
  /** Digest length in octets: both CertID hashes must have it. */
  length: number;
}

const HASHES: readonly HashRow[] = [
  { name: 'sha1', oid: '1.3.14.3.2.26', length: 20 },
  { name: 'sha256', oid: '2.16.840.1.101.3.4.2.1', length: 32 },
  { name: 'sha384', oid: '2.16.840.1.101.3.4.2.2', length: 48 },
  { name: 'sha512', oid: '2.16.840.1.101.3.4.2.3', length: 64 },
];

function hashByName(name: OcspHash): HashRow {
  const row = HASHES.find((h) => h.name === name);
  if (row === undefined) throw new PkiError('badOcspRequest', `hash ${String(name)} is not supported for OCSP`);
  return row;
}

/** One certificate a client asks about (RFC 6960 §4.1.1). */
export interface CertId {
  hash: OcspHash;
  issuerNameHash: Uint8Array;
  issuerKeyHash: Uint8Array;
  /** Canonical lower-case hex, as `serialToHex` makes it. */
  serial: string;
  /** The CertID exactly as received; the response echoes these bytes. */
  der: Uint8Array;
}

export interface OcspRequest {
  certIds: CertId[];
  /**
   * The nonce extension's extnValue exactly as the client sent it, or null when it sent none:
   * normally an OCTET STRING around the nonce (RFC 9654 §2.1), bare octets from legacy clients.
   * The response echoes these bytes unchanged, since clients compare the extension byte for byte.
   */
  nonce: Uint8Array | null;
}

/** Requests larger than this are refused before parsing; one CertID with a nonce is ~100 bytes. */
export const MAX_OCSP_REQUEST_BYTES = 8192;

/**
 * Most CertIDs one request may ask about. RFC 6960 §4.1.1 allows a list and RFC 5019 §2.1.1
 * clients send one; `openssl ocsp -serial A -serial B` and chain-checking clients send a few.
 * Ten answers any chain we issue with room to spare while keeping a request's work (a status
 * read per CertID, one signature) small; more is `malformedRequest`.
 */
export const MAX_OCSP_CERT_IDS = 10;

const NONCE_OID = '1.3.6.1.5.5.7.48.1.2';
/** RFC 9654 §2.1: a nonce is 1 to 32 octets. */
const MAX_NONCE_BYTES = 32;

const bad = (reason: string): PkiError => new PkiError('badOcspRequest', `malformed OCSP request: ${reason}`);

function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (t === undefined || t.tag !== tag) throw bad(`${what} is missing or has the wrong type`);
  return t;
}

/** The one TLV inside an EXPLICIT tag, which must fill it exactly. */
function explicit(buf: Uint8Array, t: Tlv, what: string): Tlv {
  const inner = readChildren(buf, t);
  if (inner.length !== 1) throw bad(`${what} must hold exactly one value`);
  return inner[0]!;
}

function readCertId(buf: Uint8Array, t: Tlv): CertId {
  const [algorithm, nameHash, keyHash, serial, ...rest] = readChildren(buf, expect(t, 0x30, 'CertID'));
  if (rest.length > 0) throw bad('CertID has extra fields');
  const [algOid, params, ...more] = readChildren(buf, expect(algorithm, 0x30, 'the CertID hash algorithm'));
  // RFC 6960 §4.1.1 via RFC 5754 §2: parameters absent or NULL.
  const paramsOk = params === undefined || (params.tag === 0x05 && params.end === params.contentStart);
  if (algOid === undefined || !paramsOk || more.length > 0)
    throw bad('the CertID hash AlgorithmIdentifier is malformed');
  const oid = readOid(buf, algOid);
  const row = HASHES.find((h) => h.oid === oid);
  if (row === undefined) throw bad(`hash algorithm ${oid} is not supported (use SHA-1, SHA-256, SHA-384 or SHA-512)`);
  const name = expect(nameHash, 0x04, 'issuerNameHash');
  const key = expect(keyHash, 0x04, 'issuerKeyHash');
  if (name.end - name.contentStart !== row.length || key.end - key.contentStart !== row.length) {
    throw bad(`issuer hashes must be ${row.length} octets for ${row.name}`);
  }
  const s = expect(serial, 0x02, 'serialNumber');
  const len = s.end - s.contentStart;
  if (len === 0) throw bad('serialNumber is empty');
  if (buf[s.contentStart]! & 0x80) throw bad('serialNumber is negative');
  if (len > 1 && buf[s.contentStart] === 0 && !(buf[s.contentStart + 1]! & 0x80))
    throw bad('serialNumber is not minimally encoded');
  // RFC 5280 §4.1.2.2: at most 20 octets, not counting the sign octet.
  if (len - (buf[s.contentStart] === 0 ? 1 : 0) > 20) throw bad('serialNumber is longer than 20 octets');
  return {
    hash: row.name,
    issuerNameHash: buf.slice(name.contentStart, name.end),
    issuerKeyHash: buf.slice(key.contentStart, key.end),
    serial: serialToHex(buf.subarray(s.contentStart, s.end)),
    der: buf.slice(t.start, t.end),
  };
}

/**
 * Reads the nonce extension's value. OpenSSL and RFC 8954/9654 wrap the nonce in an OCTET STRING
 * inside extnValue; older clients put the raw nonce there, which we also take. Either way the
 * nonce proper must be 1 to 32 octets, and what is returned is extnValue as sent: re-wrapping a
 * raw nonce in the response made it differ from the request, and the client saw a mismatch.
 */
function readNonce(buf: Uint8Array, value: Tlv): Uint8Array {
  const content = buf.subarray(value.contentStart, value.end);
  let nonce = content;
  try {
    const inner = readTlv(content, 0);
    if (inner.tag === 0x04 && inner.end === content.length) nonce = content.subarray(inner.contentStart, inner.end);
  } catch {
    // not DER: the legacy raw form
  }
  if (nonce.length === 0 || nonce.length > MAX_NONCE_BYTES)
    throw bad(`the nonce is ${nonce.length} octets (RFC 9654 §2.1 allows 1 to ${MAX_NONCE_BYTES})`);
  return content.slice();
}

function readRequestExtensions(buf: Uint8Array, list: Tlv): Uint8Array | null {
  let nonce: Uint8Array | null = null;
  for (const ext of readChildren(buf, expect(list, 0x30, 'requestExtensions'))) {
    const parts = readChildren(buf, expect(ext, 0x30, 'an extension'));
    const id = expect(parts[0], 0x06, 'extnID');
    const value = expect(parts[parts.length - 1], 0x04, 'extnValue');
    if (parts.length > 3 || (parts.length === 3 && parts[1]!.tag !== 0x01)) throw bad('an extension is malformed');
    if (readOid(buf, id) !== NONCE_OID) continue; // RFC 6960 §4.4: unrecognized extensions are ignored
    if (nonce !== null) throw bad('the nonce extension appears twice');
    nonce = readNonce(buf, value);
  }
  return nonce;
}

/**
 * Parses a DER OCSPRequest (RFC 6960 §4.1) into the CertIDs asked about and the nonce. At most
 * `maxCertIds` requests are accepted (`MAX_OCSP_CERT_IDS` by default). A requestorName, a
 * signature and extensions other than the nonce are accepted and ignored (RFC 6960 §4.4).
 * Every malformation is `badOcspRequest`, which the responder turns into malformedRequest.
 */
export function parseOcspRequest(der: Uint8Array, opts: { maxCertIds?: number } = {}): OcspRequest {
  const maxCertIds = opts.maxCertIds ?? MAX_OCSP_CERT_IDS;
  if (der.length > MAX_OCSP_REQUEST_BYTES) throw bad(`the request is larger than ${MAX_OCSP_REQUEST_BYTES} bytes`);
  try {
    const outer = expect(readTlv(der, 0), 0x30, 'OCSPRequest');
    if (outer.end !== der.length) throw bad('trailing bytes after the request');
    const [tbs, signature, ...extra] = readChildren(der, outer);
    if (extra.length > 0 || (signature !== undefined && signature.tag !== 0xa0))
      throw bad('OCSPRequest has unexpected fields');
    const fields = readChildren(der, expect(tbs, 0x30, 'tbsRequest'));
    let i = 0;
    if (fields[i]?.tag === 0xa0) {
      const version = explicit(der, fields[i++]!, 'version');
      if (version.tag !== 0x02 || version.end - version.contentStart !== 1 || der[version.contentStart] !== 0)
        throw bad('only version v1 is supported');
    }
    if (fields[i]?.tag === 0xa1) i++; // requestorName: informational only
    const list = expect(fields[i++], 0x30, 'requestList');
    let nonce: Uint8Array | null = null;
    if (fields[i]?.tag === 0xa2) nonce = readRequestExtensions(der, explicit(der, fields[i++]!, 'requestExtensions'));
    if (i !== fields.length) throw bad('tbsRequest has unexpected fields');

    const certIds: CertId[] = [];
    for (let pos = list.contentStart; pos < list.end;) {
      if (certIds.length === maxCertIds)
        throw bad(
          `more than ${maxCertIds} CertID${maxCertIds === 1 ? '' : 's'} in one request (the limit is ${maxCertIds})`,
        );
      const request = readTlv(der, pos);
      if (request.end > list.end) throw bad('a Request overruns requestList');
      const [certId, singleExtensions, ...more] = readChildren(der, expect(request, 0x30, 'Request'));
      if (more.length > 0 || (singleExtensions !== undefined && singleExtensions.tag !== 0xa0))
        throw bad('Request has unexpected fields');
      certIds.push(readCertId(der, expect(certId, 0x30, 'reqCert')));
      pos = request.end;
    }
    if (certIds.length === 0) throw bad('requestList is empty');
    return { certIds, nonce };
  } catch (cause) {
    if (cause instanceof PkiError && cause.code === 'badOcspRequest') throw cause;
    throw new PkiError('badOcspRequest', `malformed OCSP request: ${(cause as Error).message}`, { cause });
  }
}

/**
 * The smallest OCSPRequest asking about one CertID: no version (DER omits the DEFAULT), no
 * requestorName, no extensions, no signature. It is what RFC 5019 §2.1.1 clients (nginx, OpenSSL
 * with -no_nonce, browsers) send, and a function of the CertID alone, so a responder can key its
 * pre-signed answers on these bytes and answer a client that sends exactly them without parsing.
 */
export function minimalOcspRequest(certId: Pick<CertId, 'der'>): Uint8Array {
  // OCSPRequest { tbsRequest { requestList { Request { reqCert } } } }
  return tlv(0x30, tlv(0x30, tlv(0x30, tlv(0x30, certId.der))));
}

/** The subjectPublicKey BIT STRING's value, without its unused-bits octet (RFC 6960 §4.1.1). */
function subjectPublicKeyBits(spki: Uint8Array): Uint8Array {
  const bits = readChildren(spki, readTlv(spki, 0))[1];
  if (bits === undefined || bits.tag !== 0x03) throw new PkiError('badDer', 'SubjectPublicKeyInfo has no BIT STRING');
  return spki.subarray(bits.contentStart + 1, bits.end);
}

/**
 * The issuerNameHash and issuerKeyHash a CertID for a certificate issued by `issuer` carries: the
 * hash of the issuer's subject Name DER and of its public key bits (RFC 6960 §4.1.1).
 */
export function issuerHashes(issuer: CertificateInfo, hash: OcspHash): { nameHash: Uint8Array; keyHash: Uint8Array } {
  const { name } = hashByName(hash);
  const digest = (data: Uint8Array): Uint8Array => new Uint8Array(createHash(name).update(data).digest());
  return { nameHash: digest(issuer.subjectDer), keyHash: digest(subjectPublicKeyBits(issuer.publicKey.spki)) };
}
