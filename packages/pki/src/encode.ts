import { Buffer } from 'node:buffer';
import type { SignatureAlgorithm } from './algorithms.js';
import type { Signer } from './crypto.js';
import {
  bitString,
  booleanTrue,
  integer,
  integerBytes,
  namedBits,
  nullValue,
  octetString,
  oid,
  sequence,
  time,
  tlv,
} from './der.js';
import type { CertificateDraft, KeyUsageName } from './draft.js';
import { PkiError } from './errors.js';
import { encodeGeneralName, encodeGeneralNames } from './general-names.js';

// RFC 5280 §4.2.1.3 bit positions.
const KEY_USAGE_BITS: Record<KeyUsageName, number> = {
  digitalSignature: 0,
  keyEncipherment: 2,
  keyCertSign: 5,
  cRLSign: 6,
};

const EXT = {
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  nameConstraints: '2.5.29.30',
  crlDistributionPoints: '2.5.29.31',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  ocspNoCheck: '1.3.6.1.5.5.7.48.1.5',
} as const;

const AD_OCSP = '1.3.6.1.5.5.7.48.1';
const AD_CA_ISSUERS = '1.3.6.1.5.5.7.48.2';

/** A DER tag and length for `length` content octets. */
export function derHeader(tag: number, length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(tag, length);
  const bytes: number[] = [];
  for (let v = length; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Uint8Array.of(tag, 0x80 | bytes.length, ...bytes);
}

/**
 * `tlv` in one allocation: der.ts's `tlv` copies its contents twice at every level, which was half
 * the cost of an OCSP response and would triple a million-entry CRL's memory.
 */
export function wrap(tag: number, parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const head = derHeader(tag, length);
  const out = new Uint8Array(head.length + length);
  out.set(head, 0);
  let pos = head.length;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** DER AlgorithmIdentifier for a signature algorithm (RFC 5754 §3.2, RFC 8410 §3). */
export function algorithmIdentifier(alg: SignatureAlgorithm): Uint8Array {
  return alg.nullParameters ? sequence(oid(alg.oid), nullValue()) : sequence(oid(alg.oid));
}

/** One DER Extension (RFC 5280 §4.1): critical is written only when true, as DER drops DEFAULT FALSE. */
export function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? sequence(oid(id), booleanTrue(), octetString(value)) : sequence(oid(id), octetString(value));
}

const uriName = (uri: string): Uint8Array => encodeGeneralName({ kind: 'uri', value: uri });

function encodeExtensions(d: CertificateDraft): Uint8Array[] {
  const out: Uint8Array[] = [];
  const bc = d.basicConstraints.ca
    ? sequence(
        booleanTrue(),
        ...(d.basicConstraints.pathLen === undefined ? [] : [integer(d.basicConstraints.pathLen)]),
      )
    : sequence();
  out.push(extension(EXT.basicConstraints, true, bc));
  out.push(extension(EXT.keyUsage, true, namedBits(d.keyUsage.map((k) => KEY_USAGE_BITS[k]))));
  if (d.extKeyUsage.length > 0) out.push(extension(EXT.extKeyUsage, false, sequence(...d.extKeyUsage.map(oid))));
  out.push(extension(EXT.subjectKeyIdentifier, false, octetString(d.subjectKeyIdentifier)));
  if (d.authorityKeyIdentifier !== null) {
    out.push(extension(EXT.authorityKeyIdentifier, false, sequence(tlv(0x80, d.authorityKeyIdentifier))));
  }
  if (d.subjectAltNames.length > 0) {
    // RFC 5280 §4.2.1.6: with an empty subject the SAN extension must be critical.
    const critical = d.commonName === null;
    out.push(extension(EXT.subjectAltName, critical, encodeGeneralNames(d.subjectAltNames)));
  }
  if (d.ocspUrls.length + d.caIssuersUrls.length > 0) {
    const aia = sequence(
      ...d.ocspUrls.map((u) => sequence(oid(AD_OCSP), uriName(u))),
      ...d.caIssuersUrls.map((u) => sequence(oid(AD_CA_ISSUERS), uriName(u))),
    );
    out.push(extension(EXT.authorityInfoAccess, false, aia));
  }
  if (d.crlUrls.length > 0) {
    // DistributionPoint { distributionPoint [0] { fullName [0] GeneralNames } } (RFC 5280 §4.2.1.13)
    const dp = sequence(tlv(0xa0, tlv(0xa0, ...d.crlUrls.map(uriName))));
    out.push(extension(EXT.crlDistributionPoints, false, sequence(dp)));
  }
  if (d.nameConstraints !== null) {
    // GeneralSubtree { base } with minimum 0 omitted as DER requires for a DEFAULT (RFC 5280 §4.2.1.10).
    const subtree = (tag: number, text: string) => sequence(tlv(tag, Buffer.from(text, 'ascii')));
    const permitted = [
      ...d.nameConstraints.permittedDns.map((n) => subtree(0x82, n)),
      ...d.nameConstraints.permittedUri.map((n) => subtree(0x86, n)),
    ];
    out.push(extension(EXT.nameConstraints, true, sequence(tlv(0xa0, ...permitted))));
  }
  // RFC 6960 §4.2.2.2.1: a delegated responder's own certificate is not checked for revocation.
  if (d.ocspNoCheck) out.push(extension(EXT.ocspNoCheck, false, nullValue()));
  return out;
}

/** Encodes a draft as DER TBSCertificate (RFC 5280 §4.1), with the signer's algorithm in it. */
export function encodeTbs(d: CertificateDraft, algorithm: SignatureAlgorithm): Uint8Array {
  return sequence(
    tlv(0xa0, integer(2)), // v3
    integerBytes(d.serial),
    algorithmIdentifier(algorithm),
    d.issuerDer,
    sequence(time(d.notBefore), time(d.notAfter)),
    d.subjectDer,
    d.publicKey.spki,
    tlv(0xa3, sequence(...encodeExtensions(d))),
  );
}

/** Signs DER to-be-signed bytes and wraps them as a certificate, CRL or other signed SEQUENCE. */
export function signTbs(tbs: Uint8Array, signer: Signer): Uint8Array {
  return sequence(tbs, algorithmIdentifier(signer.algorithm), bitString(signer.sign(tbs)));
}

/** Subject attributes a certificate may carry besides the common name (RFC 5280 §4.1.2.6). */
export interface SubjectAttributes {
  country?: string | null;
  province?: string | null;
  locality?: string | null;
  organization?: string | null;
  organizationalUnit?: string | null;
}

interface SubjectAttributeRow {
  oid: string;
  /** Upper bound in characters, RFC 5280 Appendix A (ub-*). */
  max: number;
  /** X520countryName is a PrintableString of exactly two letters (ISO 3166); the rest are UTF8String. */
  printable: boolean;
}

// One row per attribute, in the order they are written: country first, common name last, as
// RFC 4519 names are conventionally ordered from the most general to the most specific.
const SUBJECT_ATTRIBUTES: Record<keyof SubjectAttributes | 'commonName', SubjectAttributeRow> = {
  country: { oid: '2.5.4.6', max: 2, printable: true },
  province: { oid: '2.5.4.8', max: 128, printable: false },
  locality: { oid: '2.5.4.7', max: 128, printable: false },
  organization: { oid: '2.5.4.10', max: 64, printable: false },
  organizationalUnit: { oid: '2.5.4.11', max: 64, printable: false },
  commonName: { oid: '2.5.4.3', max: 64, printable: false },
};

/** The subject attributes other than the common name, by the names configuration uses. */
export const SUBJECT_ATTRIBUTE_NAMES = Object.keys(SUBJECT_ATTRIBUTES).filter(
  (k) => k !== 'commonName',
) as ReadonlyArray<keyof SubjectAttributes>;

function checkAttribute(name: keyof SubjectAttributes, value: string): void {
  const row = SUBJECT_ATTRIBUTES[name];
  if (row.printable) {
    if (!/^[A-Z]{2}$/.test(value))
      throw new PkiError(
        'badSubject',
        `subject ${name} must be a two-letter ISO 3166 code such as "US", got ${JSON.stringify(value)}`,
      );
    return;
  }
  const length = [...value].length;
  if (length === 0 || length > row.max)
    throw new PkiError(
      'badSubject',
      `subject ${name} must be 1 to ${row.max} characters (RFC 5280 Appendix A), got ${length}`,
    );
  if (/[\u0000-\u001f\u007f]/.test(value))
    throw new PkiError('badSubject', `subject ${name} must not contain control characters`);
}

/**
 * Encodes a subject Name, one RDN per attribute present. The common name is written as given (the
 * callers bound it); every other attribute is checked against RFC 5280's upper bounds and throws
 * `badSubject` when it does not fit, so a bad configured value fails before anything is signed.
 */
export function encodeName(attrs: SubjectAttributes & { commonName?: string | null }): Uint8Array {
  const rdns: Uint8Array[] = [];
  for (const [name, row] of Object.entries(SUBJECT_ATTRIBUTES) as Array<
    [keyof SubjectAttributes | 'commonName', SubjectAttributeRow]
  >) {
    const value = attrs[name];
    if (value === undefined || value === null || value === '') continue;
    if (name !== 'commonName') checkAttribute(name, value);
    const encoded = row.printable ? tlv(0x13, Buffer.from(value, 'ascii')) : tlv(0x0c, Buffer.from(value, 'utf8'));
    rdns.push(tlv(0x31, sequence(oid(row.oid), encoded)));
  }
  return sequence(...rdns);
}
