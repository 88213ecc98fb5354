/**
 * Reads to-be-signed certificate bytes back into a draft with @peculiar/asn1-x509, a parser that
 * shares no code with our encoder (encode.ts, der.ts), so the lints judge what will be signed and
 * not what we meant to write (Boulder's `issuance.Prepare` lints a certificate made from the same
 * template; we go one step further and sign the very bytes that were parsed).
 */
import { Buffer } from 'node:buffer';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AuthorityInfoAccessSyntax,
  AuthorityKeyIdentifier,
  BasicConstraints,
  CRLDistributionPoints,
  ExtendedKeyUsage,
  KeyUsage,
  KeyUsageFlags,
  NameConstraints,
  SubjectAlternativeName,
  TBSCertificate,
  type GeneralName,
} from '@peculiar/asn1-x509';
import { importPublicKey } from './crypto.js';
import { OID, type CertificateDraft, type KeyUsageName, type ProfileName } from './draft.js';
import { parseNameOfKind, type SubjectName } from './names.js';
import { x509 } from './x509.js';

/** What the parsed bytes say, beyond the draft fields the profile lints read. */
export interface TbsView {
  /** The fields as parsed, in the draft's shape; `profile` is the intended one (bytes do not carry it). */
  draft: CertificateDraft;
  /** X.509 version field as encoded: 2 means v3. */
  version: number;
  /** The signature AlgorithmIdentifier inside the TBS (RFC 5280 §4.1.2.3), as DER. */
  signatureAlgorithmDer: Uint8Array;
  /** Every extension in order, with its criticality as encoded. */
  extensions: ReadonlyArray<{ id: string; critical: boolean }>;
  /** Things Shortleaf never writes that the bytes nonetheless hold (unique IDs, unknown extensions or bits). */
  unexpected: string[];
  /** The parsed structure serialised again by the independent encoder: equal to the input iff the input is DER. */
  reencoded: Uint8Array;
  /** Extension values (opaque OCTET STRINGs to the outer re-encoding) that are not DER themselves. */
  notDer: string[];
}

export const EXTENSION_OIDS = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  subjectAltName: '2.5.29.17',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  crlDistributionPoints: '2.5.29.31',
  nameConstraints: '2.5.29.30',
  ocspNoCheck: OID.ocspNoCheck,
} as const;

const KEY_USAGE_FLAGS: ReadonlyArray<[KeyUsageFlags, KeyUsageName]> = [
  [KeyUsageFlags.digitalSignature, 'digitalSignature'],
  [KeyUsageFlags.keyEncipherment, 'keyEncipherment'],
  [KeyUsageFlags.keyCertSign, 'keyCertSign'],
  [KeyUsageFlags.cRLSign, 'cRLSign'],
];

const AD_OCSP = '1.3.6.1.5.5.7.48.1';
const AD_CA_ISSUERS = '1.3.6.1.5.5.7.48.2';

const bytes = (b: ArrayBuffer | ArrayBufferView): Uint8Array =>
  b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

function uris(names: readonly GeneralName[], where: string, unexpected: string[]): string[] {
  return names.flatMap((n) => {
    if (n.uniformResourceIdentifier !== undefined) return [n.uniformResourceIdentifier];
    unexpected.push(`${where} holds a name that is not a URI`);
    return [];
  });
}

function subjectName(n: GeneralName, unexpected: string[]): SubjectName[] {
  // Names are written in their canonical form; one that parses to another spelling (a DNS name
  // in capitals) is not what the draft held, even though it names the same thing.
  const canonical = (name: SubjectName, raw: string): SubjectName[] => {
    if (name.value !== raw) unexpected.push(`subject alternative name ${raw} is not in canonical form`);
    return [name];
  };
  try {
    if (n.dNSName !== undefined) return canonical(parseNameOfKind('dns', n.dNSName), n.dNSName);
    if (n.iPAddress !== undefined) return [parseNameOfKind('ip', n.iPAddress)];
    if (n.uniformResourceIdentifier !== undefined)
      return canonical(parseNameOfKind('uri', n.uniformResourceIdentifier), n.uniformResourceIdentifier);
    if (n.rfc822Name !== undefined) return canonical(parseNameOfKind('email', n.rfc822Name), n.rfc822Name);
  } catch (cause) {
    unexpected.push(`subject alternative name cannot be read: ${(cause as Error).message}`);
    return [];
  }
  unexpected.push('subject alternative name of a kind Shortleaf never writes');
  return [];
}

/**
 * Parses DER TBSCertificate bytes. Throws (any error) when they do not parse at all; anything
 * parseable but foreign to our profiles is listed in `unexpected` for the lints to report.
 */
export function readTbsCertificate(tbs: Uint8Array, intended: CertificateDraft): TbsView {
  const parsed = AsnConvert.parse(tbs, TBSCertificate);
  const unexpected: string[] = [];
  if (parsed.issuerUniqueID !== undefined || parsed.subjectUniqueID !== undefined)
    unexpected.push('issuerUniqueID or subjectUniqueID is present');
  const spki = bytes(AsnConvert.serialize(parsed.subjectPublicKeyInfo));
  const subjectDer = bytes(AsnConvert.serialize(parsed.subject));
  const draft: CertificateDraft = {
    profile: intended.profile as ProfileName,
    serial: bytes(parsed.serialNumber),
    issuerDer: bytes(AsnConvert.serialize(parsed.issuer)),
    subjectDer,
    commonName: new x509.Name(subjectDer).getField('CN')[0] ?? null,
    notBefore: parsed.validity.notBefore.getTime(),
    notAfter: parsed.validity.notAfter.getTime(),
    publicKey: Buffer.from(spki).equals(intended.publicKey.spki) ? intended.publicKey : importPublicKey(spki),
    basicConstraints: { ca: false },
    keyUsage: [],
    extKeyUsage: [],
    subjectKeyIdentifier: new Uint8Array(0),
    authorityKeyIdentifier: null,
    subjectAltNames: [],
    ocspUrls: [],
    caIssuersUrls: [],
    crlUrls: [],
    nameConstraints: null,
    ocspNoCheck: false,
  };
  const notDer: string[] = [];
  /** Parses an extension value and checks it re-encodes to the same bytes (X.690 §10: DER is one encoding). */
  const parse = <T>(value: ArrayBuffer, type: new () => T, id: string): T => {
    const parsedValue = AsnConvert.parse(value, type);
    if (!Buffer.from(AsnConvert.serialize(parsedValue)).equals(Buffer.from(value))) notDer.push(`extension ${id}`);
    return parsedValue;
  };
  const seen = new Set<string>();
  for (const ext of parsed.extensions ?? []) {
    // RFC 5280 §4.2: one instance per extension; the lints report duplicates, the first one counts.
    if (seen.has(ext.extnID)) continue;
    seen.add(ext.extnID);
    const value = ext.extnValue.buffer;
    switch (ext.extnID) {
      case EXTENSION_OIDS.basicConstraints: {
        const bc = parse(value, BasicConstraints, ext.extnID);
        draft.basicConstraints =
          bc.pathLenConstraint === undefined ? { ca: bc.cA } : { ca: bc.cA, pathLen: bc.pathLenConstraint };
        break;
      }
      case EXTENSION_OIDS.keyUsage: {
        const bits = parse(value, KeyUsage, ext.extnID);
        const flags = bits.toNumber();
        // X.690 §11.2.2: a named bit string drops its trailing zero bits, so unusedBits is fixed by the value.
        const last = new Uint8Array(bits.value).at(-1) ?? 0;
        if (last === 0 || bits.unusedBits !== Math.log2(last & -last)) notDer.push('KeyUsage keeps trailing zero bits');
        draft.keyUsage = KEY_USAGE_FLAGS.filter(([f]) => (flags & f) !== 0).map(([, n]) => n);
        if ((flags & ~KEY_USAGE_FLAGS.reduce((a, [f]) => a | f, 0)) !== 0)
          unexpected.push('KeyUsage has bits Shortleaf never sets');
        break;
      }
      case EXTENSION_OIDS.extKeyUsage:
        draft.extKeyUsage = [...parse(value, ExtendedKeyUsage, ext.extnID)];
        break;
      case EXTENSION_OIDS.subjectKeyIdentifier:
        draft.subjectKeyIdentifier = bytes(parse(value, OctetString, ext.extnID).buffer);
        break;
      case EXTENSION_OIDS.authorityKeyIdentifier: {
        const aki = parse(value, AuthorityKeyIdentifier, ext.extnID);
        if (aki.authorityCertIssuer !== undefined || aki.authorityCertSerialNumber !== undefined)
          unexpected.push('AuthorityKeyIdentifier names an issuer and serial');
        draft.authorityKeyIdentifier = aki.keyIdentifier === undefined ? null : bytes(aki.keyIdentifier.buffer);
        break;
      }
      case EXTENSION_OIDS.subjectAltName:
        draft.subjectAltNames = [...parse(value, SubjectAlternativeName, ext.extnID)].flatMap((n) =>
          subjectName(n, unexpected),
        );
        break;
      case EXTENSION_OIDS.authorityInfoAccess:
        for (const ad of parse(value, AuthorityInfoAccessSyntax, ext.extnID)) {
          const [url] = uris([ad.accessLocation], 'AuthorityInfoAccess', unexpected);
          if (url === undefined) continue;
          if (ad.accessMethod === AD_OCSP) draft.ocspUrls = [...draft.ocspUrls, url];
          else if (ad.accessMethod === AD_CA_ISSUERS) draft.caIssuersUrls = [...draft.caIssuersUrls, url];
          else unexpected.push(`AuthorityInfoAccess method ${ad.accessMethod}`);
        }
        break;
      case EXTENSION_OIDS.crlDistributionPoints:
        for (const dp of parse(value, CRLDistributionPoints, ext.extnID)) {
          if (dp.reasons !== undefined || dp.cRLIssuer !== undefined || dp.distributionPoint?.fullName === undefined)
            unexpected.push('a CRL distribution point is not a plain fullName');
          draft.crlUrls = [
            ...draft.crlUrls,
            ...uris(dp.distributionPoint?.fullName ?? [], 'CRLDistributionPoints', unexpected),
          ];
        }
        break;
      case EXTENSION_OIDS.nameConstraints: {
        const nc = parse(value, NameConstraints, ext.extnID);
        if (nc.excludedSubtrees !== undefined) unexpected.push('NameConstraints has excludedSubtrees');
        const permitted = [...(nc.permittedSubtrees ?? [])];
        if (permitted.some((s) => s.minimum !== 0 || s.maximum !== undefined))
          unexpected.push('a GeneralSubtree has a minimum or maximum');
        draft.nameConstraints = {
          permittedDns: permitted.flatMap((s) => (s.base.dNSName === undefined ? [] : [s.base.dNSName])),
          permittedUri: permitted.flatMap((s) =>
            s.base.uniformResourceIdentifier === undefined ? [] : [s.base.uniformResourceIdentifier],
          ),
        };
        if (permitted.some((s) => s.base.dNSName === undefined && s.base.uniformResourceIdentifier === undefined))
          unexpected.push('NameConstraints of a kind Shortleaf never writes');
        break;
      }
      case EXTENSION_OIDS.ocspNoCheck:
        // RFC 6960 §4.2.2.2.1: the extension value is NULL.
        if (!Buffer.from(value).equals(Uint8Array.of(0x05, 0x00))) unexpected.push('id-pkix-ocsp-nocheck is not NULL');
        draft.ocspNoCheck = true;
        break;
      default:
        unexpected.push(`extension ${ext.extnID}`);
    }
  }
  return {
    draft,
    version: parsed.version,
    signatureAlgorithmDer: bytes(AsnConvert.serialize(parsed.signature)),
    extensions: (parsed.extensions ?? []).map((e) => ({ id: e.extnID, critical: e.critical })),
    unexpected,
    reencoded: bytes(AsnConvert.serialize(parsed)),
    notDer,
  };
}
