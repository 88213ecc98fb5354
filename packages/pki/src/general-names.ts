import { Buffer } from 'node:buffer';
import { readChildren, readTlv, sequence, tlv, type Tlv } from './der.js';
import { PkiError } from './errors.js';
import { formatIp, parseIp } from './ip.js';
import { parseNameOfKind, type SubjectName } from './names.js';

// GeneralName context tags (RFC 5280 §4.2.1.6), implicit and primitive for the four we issue.
const EMAIL = 0x81;
const DNS = 0x82;
const URI = 0x86;
const IP = 0x87;

/** Encodes one GeneralName for a DNS name, IP address, URI or email address (rfc822Name). */
export function encodeGeneralName(n: SubjectName): Uint8Array {
  switch (n.kind) {
    case 'email':
      return tlv(EMAIL, Buffer.from(n.value, 'ascii'));
    case 'dns':
      return tlv(DNS, Buffer.from(n.value, 'ascii'));
    case 'uri':
      return tlv(URI, Buffer.from(n.value, 'ascii'));
    case 'ip':
      return tlv(IP, parseIp(n.value)!);
  }
}

/** Encodes GeneralNames (a SAN extension's value). */
export const encodeGeneralNames = (names: readonly SubjectName[]): Uint8Array =>
  sequence(...names.map(encodeGeneralName));

function ascii(buf: Uint8Array, t: Tlv): string {
  const bytes = buf.subarray(t.contentStart, t.end);
  if (bytes.some((b) => b < 0x20 || b > 0x7e))
    throw new PkiError('badName', 'a name contains non-ASCII or control bytes');
  return Buffer.from(bytes).toString('ascii');
}

/**
 * Decodes GeneralNames holding only the types Shortleaf issues. Any other type (directory name,
 * otherName, SmtpUTF8Mailbox…) is refused by name rather than dropped: silently ignoring a requested name
 * would hand back a certificate that differs from what was asked without saying so.
 */
export function decodeGeneralNames(buf: Uint8Array): SubjectName[] {
  const outer = readTlv(buf, 0);
  if (outer.tag !== 0x30 || outer.end !== buf.length) throw new PkiError('badDer', 'GeneralNames is not one SEQUENCE');
  return readChildren(buf, outer).map((t) => {
    switch (t.tag) {
      // The tag says what kind of name it is; the text never reclassifies it (a URI name
      // `attacker.test` is not a DNS name, and a dNSName `10.0.0.1` is not an address).
      case DNS:
        return parseNameOfKind('dns', ascii(buf, t));
      case URI:
        return parseNameOfKind('uri', ascii(buf, t));
      case EMAIL:
        return parseNameOfKind('email', ascii(buf, t));
      case IP: {
        const len = t.end - t.contentStart;
        if (len !== 4 && len !== 16) throw new PkiError('badName', 'an iPAddress name has 4 or 16 bytes');
        return { kind: 'ip', value: formatIp(buf.subarray(t.contentStart, t.end)) };
      }
      default:
        throw new PkiError(
          'badName',
          `name type [${t.tag & 0x1f}] is not issued here (only DNS, IP, URI and email names)`,
        );
    }
  });
}

const STRING_DECODERS: Record<number, (b: Buffer) => string> = {
  0x0c: (b) => b.toString('utf8'), // UTF8String
  0x13: (b) => b.toString('latin1'), // PrintableString
  0x16: (b) => b.toString('latin1'), // IA5String
  0x14: (b) => b.toString('latin1'), // TeletexString, read as Latin-1 as most software does
  0x1e: (b) => Buffer.from(b).swap16().toString('utf16le'), // BMPString
};

/** Finds the first attribute of a type (e.g. 2.5.4.3, as OID DER bytes) in a DER Name. */
export function findNameAttribute(nameDer: Uint8Array, oidDer: Uint8Array): string | null {
  const name = readTlv(nameDer, 0);
  if (name.tag !== 0x30) throw new PkiError('badDer', 'a Name is a SEQUENCE');
  for (const rdn of readChildren(nameDer, name)) {
    if (rdn.tag !== 0x31) throw new PkiError('badDer', 'a RelativeDistinguishedName is a SET');
    for (const atv of readChildren(nameDer, rdn)) {
      const [type, value] = readChildren(nameDer, atv);
      if (type === undefined || value === undefined)
        throw new PkiError('badDer', 'an attribute needs a type and a value');
      if (!Buffer.from(nameDer.subarray(type.start, type.end)).equals(oidDer)) continue;
      const decode = STRING_DECODERS[value.tag];
      if (decode === undefined || (value.tag === 0x1e && (value.end - value.contentStart) % 2 !== 0)) {
        throw new PkiError('badDer', 'a name attribute has an unsupported string type');
      }
      return decode(Buffer.from(nameDer.subarray(value.contentStart, value.end)));
    }
  }
  return null;
}
