import { Buffer } from 'node:buffer';
import { signatureAlgorithmByOid } from './algorithms.js';
import type { CertificateInfo } from './certificate.js';
import { verifySignature, type Signer } from './crypto.js';
import {
  bitString,
  integer,
  oid,
  readChildren,
  readOid,
  readTlv,
  sequence,
  splitSigned,
  time,
  tlv,
  type Tlv,
} from './der.js';
import { algorithmIdentifier, derHeader, extension, wrap } from './encode.js';
import { PkiError } from './errors.js';
import { decodePemOne } from './pem.js';
import { REVOCATION_REASONS, reasonCode, reasonName, type RevocationReason } from './revocation-reasons.js';

/** One revoked certificate as the CRL lists it. */
export interface CrlEntry {
  /** Canonical lower-case hex, as `serialToHex` makes it. */
  serial: string;
  revokedAt: Date;
  reason: RevocationReason;
}

export interface CrlInput {
  issuer: { subjectDer: Uint8Array; subjectKeyIdentifier: Uint8Array; signer: Signer };
  /** CRLNumber (RFC 5280 §5.2.3): non-negative, at most 20 octets, and only ever growing. */
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  /**
   * The Issuing Distribution Point's fullName: exactly the URL in the covered certificates' CRL
   * distribution point, or OpenSSL will not consider the CRL in scope for them. Null leaves the
   * IDP out, for a root's CRL: our intermediates carry no CRL distribution point, and OpenSSL
   * (so nginx's `ssl_crl`, which checks the whole chain) calls a CRL with an IDP "different CRL
   * scope" for a certificate without one. Several URLs when the covered certificates name
   * different ones (leaves issued before and after an intermediate got its own CRL path).
   */
  distributionPoint: string | readonly string[] | null;
  /** Read once, in order; may be a generator over a million rows. */
  entries: Iterable<CrlEntry>;
}

const EXT = {
  reasonCode: '2.5.29.21',
  crlNumber: '2.5.29.20',
  issuingDistributionPoint: '2.5.29.28',
  authorityKeyIdentifier: '2.5.29.35',
} as const;

// The same OIDs as DER, so the reader compares bytes instead of decoding each extension's OID.
const OID_DER = {
  reasonCode: oid(EXT.reasonCode),
  crlNumber: oid(EXT.crlNumber),
  issuingDistributionPoint: oid(EXT.issuingDistributionPoint),
  authorityKeyIdentifier: oid(EXT.authorityKeyIdentifier),
};

/** Longest entry we can write: SEQUENCE header 2 + INTEGER 2+20 + GeneralizedTime 17 + reason 14. */
const MAX_ENTRY_BYTES = 2 + 22 + 17 + 14;
const CHUNK_BYTES = 1 << 20;

// crlEntryExtensions for each reason, encoded once: a CRL of a million entries repeats a handful
// of byte strings. RFC 5280 §5.3.1: omit reasonCode rather than write unspecified.
const REASON_EXTENSIONS: ReadonlyMap<string, Uint8Array> = new Map(
  REVOCATION_REASONS.map((r) => [
    r,
    r === 'unspecified'
      ? new Uint8Array(0)
      : sequence(extension(EXT.reasonCode, false, tlv(0x0a, Uint8Array.of(reasonCode(r))))),
  ]),
);

const HEX_VALUES = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX_VALUES[i.toString(16).charCodeAt(0)] = i;
  HEX_VALUES[i.toString(16).toUpperCase().charCodeAt(0)] = i;
}
const hexValue = (s: string, i: number): number => HEX_VALUES[s.charCodeAt(i)] ?? -1;

const bad = (message: string): PkiError => new PkiError('badCrl', message);

/**
 * Writes the serial as a DER INTEGER straight from its hex: minimal, positive, with the leading
 * zero octet a set top bit needs. No intermediate Buffer per entry.
 */
function writeSerial(out: Uint8Array, at: number, serial: string): number {
  let hex = serial;
  if (hex.length > 1 && hex.charCodeAt(0) === 0x30) hex = hex.replace(/^0+(?=.)/, '');
  const n = hex.length;
  const first = n === 0 ? -1 : hexValue(hex, 0);
  if (first < 0 || n > 40) throw bad(`serial ${JSON.stringify(serial)} is not a hexadecimal serial number`);
  const odd = n & 1;
  const pad = odd === 0 && first >= 8 ? 1 : 0;
  const length = ((n + 1) >> 1) + pad;
  if (length > 20) throw bad(`serial ${serial} is longer than 20 octets (RFC 5280 §4.1.2.2)`);
  let pos = at;
  out[pos++] = 0x02;
  out[pos++] = length;
  if (pad === 1) out[pos++] = 0;
  let i = 0;
  if (odd === 1) {
    out[pos++] = first;
    i = 1;
  }
  for (; i < n; i += 2) {
    const hi = hexValue(hex, i);
    const lo = hexValue(hex, i + 1);
    if ((hi | lo) < 0) throw bad(`serial ${JSON.stringify(serial)} is not a hexadecimal serial number`);
    out[pos++] = (hi << 4) | lo;
  }
  return pos;
}

function writeTwo(out: Uint8Array, pos: number, v: number): void {
  out[pos] = 0x30 + ((v / 10) | 0);
  out[pos + 1] = 0x30 + (v % 10);
}

/** `time()` of der.ts written in place: UTCTime through 2049, GeneralizedTime after, whole seconds. */
function writeTime(out: Uint8Array, at: number, date: Date): number {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) throw bad('a revocation date is not a valid date');
  const y = date.getUTCFullYear();
  let pos = at;
  if (y >= 1950 && y < 2050) {
    out[pos++] = 0x17;
    out[pos++] = 13;
  } else {
    if (y < 0 || y > 9999) throw bad(`revocation date ${date.toISOString()} cannot be encoded`);
    out[pos++] = 0x18;
    out[pos++] = 15;
    writeTwo(out, pos, (y / 100) | 0);
    pos += 2;
  }
  writeTwo(out, pos, y % 100);
  writeTwo(out, pos + 2, date.getUTCMonth() + 1);
  writeTwo(out, pos + 4, date.getUTCDate());
  writeTwo(out, pos + 6, date.getUTCHours());
  writeTwo(out, pos + 8, date.getUTCMinutes());
  writeTwo(out, pos + 10, date.getUTCSeconds());
  out[pos + 12] = 0x5a; // Z
  return pos + 13;
}

/** Minimal DER INTEGER content of a non-negative bigint. */
function bigintContent(n: bigint): Uint8Array {
  let hex = n.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  if (Number.parseInt(hex.slice(0, 1), 16) >= 8) hex = `00${hex}`;
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** Encodes every entry into a list of chunks, without one object per entry. */
function encodeEntries(entries: Iterable<CrlEntry>): { chunks: Uint8Array[]; length: number } {
  const chunks: Uint8Array[] = [];
  let length = 0;
  let chunk = new Uint8Array(CHUNK_BYTES);
  let pos = 0;
  for (const entry of entries) {
    if (pos + MAX_ENTRY_BYTES > chunk.length) {
      chunks.push(chunk.subarray(0, pos));
      length += pos;
      chunk = new Uint8Array(CHUNK_BYTES);
      pos = 0;
    }
    const ext = REASON_EXTENSIONS.get(entry.reason);
    if (ext === undefined) {
      reasonCode(entry.reason); // throws badRevocationReason with the reason why
      throw bad(`reason ${String(entry.reason)} has no encoding`);
    }
    const start = pos;
    pos = writeSerial(chunk, pos + 2, entry.serial);
    pos = writeTime(chunk, pos, entry.revokedAt);
    chunk.set(ext, pos);
    pos += ext.length;
    chunk[start] = 0x30;
    chunk[start + 1] = pos - start - 2; // always < 128: short-form length
  }
  if (pos > 0) {
    chunks.push(chunk.subarray(0, pos));
    length += pos;
  }
  return { chunks, length };
}

/**
 * Builds and signs a complete v2 CRL (RFC 5280 §5) for one issuer: CRLNumber, the issuer's key
 * identifier, and a critical Issuing Distribution Point naming where it is published. Entries are
 * written straight into large byte chunks and joined once, because a CRL may hold a million of them.
 */
export function buildCrl(input: CrlInput): Uint8Array {
  const { issuer, thisUpdate, nextUpdate } = input;
  if (Number.isNaN(thisUpdate.getTime()) || Number.isNaN(nextUpdate.getTime()))
    throw bad('thisUpdate and nextUpdate must be valid dates');
  if (nextUpdate.getTime() <= thisUpdate.getTime())
    throw bad('nextUpdate must be after thisUpdate (RFC 5280 §5.1.2.5)');
  if (input.number < 0n) throw bad('the CRL number cannot be negative (RFC 5280 §5.2.3)');
  const number = bigintContent(input.number);
  if (number.length > 20) throw bad('the CRL number is longer than 20 octets (RFC 5280 §5.2.3)');
  const distributionPoints =
    input.distributionPoint === null
      ? []
      : typeof input.distributionPoint === 'string'
        ? [input.distributionPoint]
        : input.distributionPoint;
  if (input.distributionPoint !== null && distributionPoints.length === 0)
    throw bad('give at least one distribution point URL, or null for none');
  if (distributionPoints.some((u) => !/^[\x21-\x7e]+$/.test(u)))
    throw bad('the distribution point must be a URL of printable ASCII');

  const { chunks, length } = encodeEntries(input.entries);
  const extensions = [
    extension(EXT.authorityKeyIdentifier, false, sequence(tlv(0x80, issuer.subjectKeyIdentifier))),
    extension(EXT.crlNumber, false, tlv(0x02, number)),
  ];
  if (distributionPoints.length > 0) {
    // IssuingDistributionPoint { distributionPoint [0] { fullName [0] GeneralNames { [6] URI, … } } },
    // critical (RFC 5280 §5.2.5), and no only*/indirect flags: OpenSSL finds such CRLs out of scope.
    // OpenSSL takes a CRL as in scope when any of these names equals one in the certificate's CDP.
    const idp = sequence(tlv(0xa0, tlv(0xa0, ...distributionPoints.map((u) => tlv(0x86, Buffer.from(u, 'ascii'))))));
    extensions.push(extension(EXT.issuingDistributionPoint, true, idp));
  }
  const tbs = wrap(0x30, [
    integer(1), // v2
    algorithmIdentifier(issuer.signer.algorithm),
    issuer.subjectDer,
    time(thisUpdate),
    time(nextUpdate),
    // RFC 5280 §5.1.2.6: no entries means no revokedCertificates field, not an empty SEQUENCE.
    ...(length > 0 ? [derHeader(0x30, length), ...chunks] : []),
    tlv(0xa0, sequence(...extensions)),
  ]);
  return wrap(0x30, [tbs, algorithmIdentifier(issuer.signer.algorithm), bitString(issuer.signer.sign(tbs))]);
}

/** What Shortleaf reads from a CRL. */
export interface ParsedCrl {
  der: Uint8Array;
  issuerDer: Uint8Array;
  thisUpdate: Date;
  nextUpdate: Date | null;
  number: bigint | null;
  authorityKeyIdentifier: Uint8Array | null;
  entries: Array<{ serial: string; revokedAt: Date; reason: RevocationReason }>;
}

function digits(buf: Uint8Array, at: number, count: number): number {
  let v = 0;
  for (let i = at; i < at + count; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) throw bad('a time has a non-digit');
    v = v * 10 + d;
  }
  return v;
}

/** Reads UTCTime or GeneralizedTime in the only form RFC 5280 §4.1.2.5 allows: seconds, Z. */
function readTime(buf: Uint8Array, t: Tlv | undefined): Date {
  const len = t === undefined ? 0 : t.end - t.contentStart;
  if (
    t === undefined ||
    !((t.tag === 0x17 && len === 13) || (t.tag === 0x18 && len === 15)) ||
    buf[t.end - 1] !== 0x5a
  ) {
    throw bad('a time is not a UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ');
  }
  let pos = t.contentStart;
  let year: number;
  if (t.tag === 0x17) {
    const yy = digits(buf, pos, 2);
    year = yy < 50 ? 2000 + yy : 1900 + yy;
    pos += 2;
  } else {
    year = digits(buf, pos, 4);
    pos += 4;
  }
  const month = digits(buf, pos, 2);
  const day = digits(buf, pos + 2, 2);
  const hour = digits(buf, pos + 4, 2);
  const minute = digits(buf, pos + 6, 2);
  const second = digits(buf, pos + 8, 2);
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const date = new Date(ms);
  if (year < 100) date.setUTCFullYear(year);
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59)
    throw bad('a time is not a real date');
  return date;
}

const sameBytes = (buf: Uint8Array, t: Tlv, expected: Uint8Array): boolean =>
  t.end - t.start === expected.length &&
  Buffer.from(buf.buffer, buf.byteOffset + t.start, expected.length).equals(expected);

interface Extension {
  id: Tlv;
  critical: boolean;
  value: Tlv;
}

/** Reads Extensions (RFC 5280 §4.1): SEQUENCE OF SEQUENCE { extnID, critical DEFAULT FALSE, extnValue }. */
function readExtensions(buf: Uint8Array, list: Tlv): Extension[] {
  if (list.tag !== 0x30) throw bad('Extensions is not a SEQUENCE');
  return readChildren(buf, list).map((ext) => {
    if (ext.tag !== 0x30) throw bad('an extension is not a SEQUENCE');
    const parts = readChildren(buf, ext);
    const [id, second, third] = parts;
    const critical =
      parts.length === 3 &&
      second?.tag === 0x01 &&
      second.end - second.contentStart === 1 &&
      buf[second.contentStart] === 0xff;
    const value = parts.length === 3 ? third : second;
    if (id?.tag !== 0x06 || value?.tag !== 0x04 || (parts.length === 3 && !critical) || parts.length > 3) {
      throw bad('an extension is malformed');
    }
    return { id, critical, value };
  });
}

// crlEntryExtensions holding only reasonCode, as buildCrl (and OpenSSL) write them, up to the code octet.
const REASON_ONLY_PREFIX = REASON_EXTENSIONS.get('keyCompromise')!.subarray(0, -1);

function readEntryReason(buf: Uint8Array, list: Tlv): RevocationReason {
  // Fast path for the common shape, so reading a large CRL allocates nothing per entry here.
  if (list.end - list.start === REASON_ONLY_PREFIX.length + 1) {
    let i = 0;
    while (i < REASON_ONLY_PREFIX.length && buf[list.start + i] === REASON_ONLY_PREFIX[i]) i++;
    if (i === REASON_ONLY_PREFIX.length) return reasonName(buf[list.end - 1]!);
  }
  let reason: RevocationReason = 'unspecified';
  for (const ext of readExtensions(buf, list)) {
    if (sameBytes(buf, ext.id, OID_DER.reasonCode)) {
      const e = readTlv(buf, ext.value.contentStart);
      if (e.tag !== 0x0a || e.end !== ext.value.end || e.end - e.contentStart !== 1)
        throw bad('reasonCode is not one ENUMERATED octet');
      reason = reasonName(buf[e.contentStart]!);
    } else if (ext.critical) {
      // RFC 5280 §5.3: an unknown critical entry extension means the CRL cannot be used at all.
      throw bad(`unsupported critical CRL entry extension ${readOid(buf, ext.id)}`);
    }
  }
  return reason;
}

function readEntries(buf: Uint8Array, list: Tlv): ParsedCrl['entries'] {
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: ParsedCrl['entries'] = [];
  for (let pos = list.contentStart; pos < list.end;) {
    const entry = readTlv(buf, pos);
    if (entry.tag !== 0x30 || entry.end > list.end) throw bad('a revoked certificate entry is malformed');
    const serial = readTlv(buf, entry.contentStart);
    const len = serial.end - serial.contentStart;
    if (serial.tag !== 0x02 || len === 0 || serial.end > entry.end) throw bad('a revoked serial is not an INTEGER');
    if (buf[serial.contentStart]! & 0x80) throw bad('a revoked serial is negative');
    let hex = view.toString('hex', serial.contentStart, serial.end);
    if (hex.charCodeAt(0) === 0x30) hex = hex.replace(/^0+(?=.)/, '');
    if (serial.end >= entry.end) throw bad('a revoked certificate entry has no revocation date');
    const date = readTlv(buf, serial.end);
    if (date.end > entry.end) throw bad('a revocation date overruns its entry');
    const revokedAt = readTime(buf, date);
    let reason: RevocationReason = 'unspecified';
    if (date.end < entry.end) {
      const exts = readTlv(buf, date.end);
      if (exts.end !== entry.end) throw bad('a revoked certificate entry has trailing data');
      reason = readEntryReason(buf, exts);
    }
    out.push({ serial: hex, revokedAt, reason });
    pos = entry.end;
  }
  return out;
}

function readCrlExtensions(buf: Uint8Array, wrapper: Tlv): { number: bigint | null; aki: Uint8Array | null } {
  const list = readChildren(buf, wrapper);
  if (list.length !== 1) throw bad('crlExtensions holds one SEQUENCE');
  let number: bigint | null = null;
  let aki: Uint8Array | null = null;
  for (const ext of readExtensions(buf, list[0]!)) {
    const inner = readTlv(buf, ext.value.contentStart);
    if (inner.end !== ext.value.end) throw bad('an extension value has trailing data');
    if (sameBytes(buf, ext.id, OID_DER.crlNumber)) {
      const len = inner.end - inner.contentStart;
      if (inner.tag !== 0x02 || len === 0 || len > 21 || buf[inner.contentStart]! & 0x80)
        throw bad('CRLNumber is not a non-negative INTEGER');
      number = BigInt(`0x${Buffer.from(buf.subarray(inner.contentStart, inner.end)).toString('hex')}`);
    } else if (sameBytes(buf, ext.id, OID_DER.authorityKeyIdentifier)) {
      if (inner.tag !== 0x30) throw bad('AuthorityKeyIdentifier is not a SEQUENCE');
      const keyId = readChildren(buf, inner).find((t) => t.tag === 0x80);
      aki = keyId === undefined ? null : buf.slice(keyId.contentStart, keyId.end);
    } else if (ext.critical && !sameBytes(buf, ext.id, OID_DER.issuingDistributionPoint)) {
      // RFC 5280 §5.2: delta CRL indicators and other critical extensions we do not process.
      throw bad(`unsupported critical CRL extension ${readOid(buf, ext.id)}`);
    }
  }
  return { number, aki };
}

/**
 * Parses a CRL from DER or PEM ("X509 CRL") with our own DER reader, so that a CRL of a million
 * entries costs one pass. It checks structure only; `isCrlSignedBy` checks the signature.
 * Anything malformed is `badCrl`.
 */
export function parseCrl(input: Uint8Array | string): ParsedCrl {
  try {
    const der = typeof input === 'string' ? decodePemOne(input, ['X509 CRL']) : input;
    const { tbs } = splitSigned(der);
    const tbsTlv = readTlv(tbs, 0);
    if (tbsTlv.tag !== 0x30) throw bad('the signed part of the CRL (TBSCertList) is not a SEQUENCE');
    const fields = readChildren(tbs, tbsTlv);
    let i = 0;
    if (fields[0]?.tag === 0x02) {
      const v = fields[0];
      if (v.end - v.contentStart !== 1 || tbs[v.contentStart] !== 1) throw bad('the CRL version is not v2');
      i++;
    }
    const algorithm = fields[i++];
    const issuer = fields[i++];
    if (algorithm?.tag !== 0x30 || issuer?.tag !== 0x30) throw bad('the CRL has no signature algorithm or issuer');
    const thisUpdate = readTime(tbs, fields[i++]);
    let nextUpdate: Date | null = null;
    if (fields[i]?.tag === 0x17 || fields[i]?.tag === 0x18) nextUpdate = readTime(tbs, fields[i++]);
    let entries: ParsedCrl['entries'] = [];
    if (fields[i]?.tag === 0x30) entries = readEntries(tbs, fields[i++]!);
    let extensions: { number: bigint | null; aki: Uint8Array | null } = { number: null, aki: null };
    if (fields[i]?.tag === 0xa0) extensions = readCrlExtensions(tbs, fields[i++]!);
    if (i !== fields.length) throw bad('the CRL has unexpected fields');
    return {
      der,
      issuerDer: tbs.subarray(issuer.start, issuer.end),
      thisUpdate,
      nextUpdate,
      number: extensions.number,
      authorityKeyIdentifier: extensions.aki,
      entries,
    };
  } catch (cause) {
    if (cause instanceof PkiError && cause.code === 'badCrl') throw cause;
    throw new PkiError('badCrl', `the CRL cannot be parsed: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Whether `issuer` signed this CRL: the issuer name matches byte for byte, the algorithm inside the
 * signed part matches the outer one (RFC 5280 §5.1.1.2), and the signature verifies.
 */
export function isCrlSignedBy(crl: ParsedCrl, issuer: CertificateInfo): boolean {
  if (!Buffer.from(crl.issuerDer).equals(issuer.subjectDer)) return false;
  try {
    const { tbs, signature } = splitSigned(crl.der);
    const outerAlg = readChildren(crl.der, readTlv(crl.der, 0))[1]!;
    const fields = readChildren(tbs, readTlv(tbs, 0));
    const innerAlg = fields[fields[0]?.tag === 0x02 ? 1 : 0];
    if (innerAlg === undefined || !sameBytes(tbs, innerAlg, crl.der.subarray(outerAlg.start, outerAlg.end)))
      return false;
    const algOid = readChildren(crl.der, outerAlg)[0];
    if (algOid === undefined) return false;
    return verifySignature(issuer.publicKey, signatureAlgorithmByOid(readOid(crl.der, algOid)), tbs, signature);
  } catch {
    return false;
  }
}
