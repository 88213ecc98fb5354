import { AsnConvert } from '@peculiar/asn1-schema';
import { Extensions, GeneralName, Name, SubjectAlternativeName } from '@peculiar/asn1-x509';
import { signatureAlgorithmByOid, type SignatureAlgorithm } from './algorithms.js';
import { createSigner, importPublicKey, publicKeyOf, verifySignature, type KeyObject, type PublicKeyInfo } from './crypto.js';
import { integer, oid, readChildren, readOid, readTlv, sequence, splitSigned, tlv } from './der.js';
import { encodeName, signTbs } from './encode.js';
import { PkiError } from './errors.js';
import { parseName, type SubjectName } from './names.js';
import { decodePemOne, encodePem } from './pem.js';

/** CSRs larger than this are refused before parsing; real ones are well under 4 KiB. */
export const MAX_CSR_BYTES = 16 * 1024;

const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const SUBJECT_ALT_NAME = '2.5.29.17';
const COMMON_NAME = '2.5.4.3';

/** A CSR whose signature has been verified and whose key is of a type we sign. */
export interface ParsedCsr {
  der: Uint8Array;
  publicKey: PublicKeyInfo;
  commonName: string | null;
  /** Names the CSR asks for (SAN and CN); only a credential can authorise them. */
  requestedNames: SubjectName[];
  signatureAlgorithm: SignatureAlgorithm;
}

/**
 * Parses a PKCS#10 CSR (RFC 2986) from PEM or DER and checks its self-signature, which proves the
 * requester holds the private key. Every structural problem is a `badCsr` with a readable reason.
 */
export function parseCsr(input: string | Uint8Array): ParsedCsr {
  const der = typeof input === 'string' ? decodePemOne(input, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']) : input;
  if (der.length > MAX_CSR_BYTES) throw new PkiError('badCsr', `the CSR is larger than ${MAX_CSR_BYTES} bytes`);
  let tbs: Uint8Array;
  let signature: Uint8Array;
  let algorithmOid: string;
  let subjectDer: Uint8Array;
  let spki: Uint8Array;
  let attributes: Uint8Array | null;
  try {
    ({ tbs, signature } = splitSigned(der));
    const outer = readTlv(der, 0);
    const algTlv = readChildren(der, outer)[1]!;
    const algOid = readChildren(der, algTlv)[0];
    if (algOid === undefined || algOid.tag !== 0x06) throw new PkiError('badDer', 'no signature algorithm');
    algorithmOid = readOid(der, algOid);
    const info = readTlv(tbs, 0);
    const parts = readChildren(tbs, info);
    const [version, subject, pk, attrs] = parts;
    if (version?.tag !== 0x02 || subject?.tag !== 0x30 || pk?.tag !== 0x30) throw new PkiError('badDer', 'CertificationRequestInfo is malformed');
    if (tbs[version.contentStart] !== 0 || version.end - version.contentStart !== 1) throw new PkiError('badDer', 'only CSR version 1 is supported');
    subjectDer = tbs.subarray(subject.start, subject.end);
    spki = tbs.subarray(pk.start, pk.end);
    attributes = attrs !== undefined && attrs.tag === 0xa0 ? tbs.subarray(attrs.start, attrs.end) : null;
  } catch (cause) {
    if (cause instanceof PkiError && cause.code !== 'badDer') throw cause;
    throw new PkiError('badCsr', `the CSR is not valid DER: ${(cause as Error).message}`, { cause });
  }
  const signatureAlgorithm = signatureAlgorithmByOid(algorithmOid);
  const publicKey = importPublicKey(spki);
  if (!verifySignature(publicKey, signatureAlgorithm, tbs, signature)) {
    throw new PkiError('badCsrSignature', "the CSR's signature does not verify with its own public key");
  }
  const commonName = readCommonName(subjectDer);
  const requestedNames = attributes === null ? [] : readRequestedNames(attributes);
  return { der, publicKey, commonName, requestedNames, signatureAlgorithm };
}

function readCommonName(subjectDer: Uint8Array): string | null {
  try {
    const name = AsnConvert.parse(subjectDer, Name);
    for (const rdn of name) for (const atv of rdn) if (atv.type === COMMON_NAME) return atv.value.toString();
    return null;
  } catch (cause) {
    throw new PkiError('badCsr', 'the CSR subject cannot be parsed', { cause });
  }
}

function readRequestedNames(attributesDer: Uint8Array): SubjectName[] {
  const names: SubjectName[] = [];
  try {
    const outer = readTlv(attributesDer, 0);
    for (const attr of readChildren(attributesDer, outer)) {
      const [type, values] = readChildren(attributesDer, attr);
      if (type === undefined || values === undefined) continue;
      const typeOid = readOid(attributesDer, type);
      if (typeOid !== EXTENSION_REQUEST) continue;
      const value = readChildren(attributesDer, values)[0];
      if (value === undefined) continue;
      const exts = AsnConvert.parse(attributesDer.subarray(value.start, value.end), Extensions);
      for (const ext of exts) {
        if (ext.extnID !== SUBJECT_ALT_NAME) continue;
        for (const gn of AsnConvert.parse(ext.extnValue, SubjectAlternativeName)) names.push(generalNameToSubject(gn));
      }
    }
  } catch (cause) {
    if (cause instanceof PkiError) throw cause;
    throw new PkiError('badCsr', 'the CSR extension request cannot be parsed', { cause });
  }
  return names;
}

function generalNameToSubject(gn: GeneralName): SubjectName {
  if (gn.dNSName !== undefined) return parseName(gn.dNSName);
  if (gn.iPAddress !== undefined) return parseName(gn.iPAddress);
  if (gn.uniformResourceIdentifier !== undefined) return parseName(gn.uniformResourceIdentifier);
  throw new PkiError('badCsr', 'the CSR asks for a name type we do not issue (only DNS, IP and URI)');
}

/** Makes a CSR with a CN and SAN names, signed with the given key; used by the CLI and the CA itself. */
export function createCsr(privateKey: KeyObject, subject: { commonName: string | null; organization?: string | null }, names: readonly SubjectName[]): Uint8Array {
  const signer = createSigner(privateKey);
  const attrs: Uint8Array[] = [];
  if (names.length > 0) {
    const san = new Uint8Array(AsnConvert.serialize(new SubjectAlternativeName(names.map(subjectToGeneralName))));
    const ext = sequence(oid(SUBJECT_ALT_NAME), tlv(0x04, san));
    attrs.push(sequence(oid(EXTENSION_REQUEST), tlv(0x31, sequence(ext))));
  }
  const info = sequence(integer(0), encodeName(subject), publicKeyOf(privateKey).spki, tlv(0xa0, ...attrs));
  return signTbs(info, signer);
}

function subjectToGeneralName(n: SubjectName): GeneralName {
  if (n.kind === 'dns') return new GeneralName({ dNSName: n.value });
  if (n.kind === 'ip') return new GeneralName({ iPAddress: n.value });
  return new GeneralName({ uniformResourceIdentifier: n.value });
}

/** PEM form of a CSR. */
export const csrToPem = (der: Uint8Array): string => encodePem('CERTIFICATE REQUEST', der);
