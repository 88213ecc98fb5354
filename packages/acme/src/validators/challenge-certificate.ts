/**
 * A small DER walk over a tls-alpn-01 challenge certificate, for the two extensions RFC 8737 §3
 * asks about. @shortleaf/pki's `parseCertificate` keeps only dns/ip/uri names and says nothing of
 * criticality, and the challenge certificate is untrusted input that need not be well formed
 * otherwise, so only the path to the extensions is read and every length is bounds-checked.
 */

export interface ChallengeCertificate {
  /** Every acmeIdentifier extension: its critical flag and its extnValue (the OCTET STRING's content). */
  acmeIdentifiers: Array<{ critical: boolean; value: Uint8Array }>;
  /** The subjectAltName GeneralNames as context tag + content; null when there is no SAN extension. */
  altNames: Array<{ tag: number; value: Uint8Array }> | null;
}

/** GeneralName tags (RFC 5280 §4.2.1.6, implicit context tags). */
export const DNS_NAME_TAG = 0x82;
export const IP_ADDRESS_TAG = 0x87;

// DER of the OIDs' contents: id-pe-acmeIdentifier 1.3.6.1.5.5.7.1.31 (RFC 8737 §6.1), id-ce-subjectAltName 2.5.29.17.
const ACME_IDENTIFIER_OID = Uint8Array.of(0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x1f);
const SUBJECT_ALT_NAME_OID = Uint8Array.of(0x55, 0x1d, 0x11);

interface Tlv {
  tag: number;
  contentStart: number;
  end: number;
}

/** Reads what tls-alpn-01 checks; throws a plain Error naming the problem if the DER is unreadable. */
export function readChallengeCertificate(der: Uint8Array): ChallengeCertificate {
  const certificate = expectTag(readTlv(der, 0, der.length), 0x30, 'Certificate');
  if (certificate.end !== der.length) throw new Error('there are bytes after the certificate');
  const tbs = expectTag(children(der, certificate)[0], 0x30, 'TBSCertificate');
  const result: ChallengeCertificate = { acmeIdentifiers: [], altNames: null };
  const explicit = children(der, tbs).find((f) => f.tag === 0xa3);
  if (explicit === undefined) return result;
  for (const extension of children(der, expectTag(children(der, explicit)[0], 0x30, 'Extensions'))) {
    const parts = children(der, expectTag(extension, 0x30, 'Extension'));
    if (parts.length < 2 || parts.length > 3) throw new Error('an Extension has the wrong number of fields');
    const oid = expectTag(parts[0], 0x06, 'extnID');
    const flag = parts.length === 3 ? expectTag(parts[1], 0x01, 'critical') : null;
    const value = expectTag(parts[parts.length - 1], 0x04, 'extnValue');
    const content = der.subarray(value.contentStart, value.end);
    if (sameBytes(der.subarray(oid.contentStart, oid.end), ACME_IDENTIFIER_OID)) {
      result.acmeIdentifiers.push({ critical: flag !== null && der[flag.contentStart] !== 0, value: content });
    } else if (sameBytes(der.subarray(oid.contentStart, oid.end), SUBJECT_ALT_NAME_OID)) {
      if (result.altNames !== null) throw new Error('the subjectAltName extension appears twice');
      const names = expectTag(readTlv(content, 0, content.length), 0x30, 'GeneralNames');
      if (names.end !== content.length) throw new Error('there are bytes after the GeneralNames');
      result.altNames = children(content, names).map((n) => ({
        tag: n.tag,
        value: content.subarray(n.contentStart, n.end),
      }));
    }
  }
  return result;
}

function readTlv(buf: Uint8Array, offset: number, limit: number): Tlv {
  const tag = buf[offset];
  let length = buf[offset + 1];
  if (tag === undefined || length === undefined || offset + 2 > limit) throw new Error('the DER is truncated');
  if ((tag & 0x1f) === 0x1f) throw new Error('the DER uses a high tag number');
  let pos = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || pos + count > limit) throw new Error('the DER has a bad length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + buf[pos++]!;
  }
  if (pos + length > limit) throw new Error('the DER is truncated');
  return { tag, contentStart: pos, end: pos + length };
}

function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let pos = parent.contentStart; pos < parent.end;) {
    const child = readTlv(buf, pos, parent.end);
    out.push(child);
    pos = child.end;
  }
  return out;
}

function expectTag(tlv: Tlv | undefined, tag: number, what: string): Tlv {
  if (tlv?.tag !== tag) throw new Error(`the ${what} is missing or has the wrong type`);
  return tlv;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
