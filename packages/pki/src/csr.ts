import { Buffer } from 'node:buffer';
import { signatureAlgorithmByOid, type SignatureAlgorithm } from './algorithms.js';
import {
  createSigner,
  importPublicKey,
  publicKeyOf,
  verifySignature,
  type KeyObject,
  type PublicKeyInfo,
} from './crypto.js';
import { integer, oid, readChildren, readOid, readTlv, sequence, splitSigned, tlv } from './der.js';
import { encodeName, signTbs } from './encode.js';
import { PkiError } from './errors.js';
import { decodeGeneralNames, encodeGeneralNames, findNameAttribute } from './general-names.js';
import type { SubjectName } from './names.js';
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
  const der =
    typeof input === 'string' ? decodePemOne(input, ['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']) : input;
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
    if (version?.tag !== 0x02 || subject?.tag !== 0x30 || pk?.tag !== 0x30)
      throw new PkiError('badDer', 'CertificationRequestInfo is malformed');
    if (tbs[version.contentStart] !== 0 || version.end - version.contentStart !== 1)
      throw new PkiError('badDer', 'only CSR version 1 is supported');
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

const COMMON_NAME_OID = oid(COMMON_NAME);
const SAN_OID = oid(SUBJECT_ALT_NAME);

function readCommonName(subjectDer: Uint8Array): string | null {
  try {
    return findNameAttribute(subjectDer, COMMON_NAME_OID);
  } catch (cause) {
    throw new PkiError('badCsr', 'the CSR subject cannot be parsed', { cause });
  }
}

// PKCS#9 extensionRequest: SET { Extensions }, each Extension SEQUENCE { OID, [critical], OCTET STRING }.
function readRequestedNames(attributesDer: Uint8Array): SubjectName[] {
  const names: SubjectName[] = [];
  try {
    const outer = readTlv(attributesDer, 0);
    for (const attr of readChildren(attributesDer, outer)) {
      const [type, values] = readChildren(attributesDer, attr);
      if (type === undefined || values === undefined)
        throw new PkiError('badDer', 'an attribute needs a type and values');
      if (readOid(attributesDer, type) !== EXTENSION_REQUEST) continue;
      const exts = readChildren(attributesDer, values)[0];
      if (exts === undefined || exts.tag !== 0x30) throw new PkiError('badDer', 'extensionRequest holds no Extensions');
      for (const ext of readChildren(attributesDer, exts)) {
        const parts = readChildren(attributesDer, ext);
        const id = parts[0];
        const value = parts[parts.length - 1];
        if (id === undefined || value === undefined || value.tag !== 0x04)
          throw new PkiError('badDer', 'an extension is malformed');
        if (!Buffer.from(attributesDer.subarray(id.start, id.end)).equals(SAN_OID)) continue;
        names.push(...decodeGeneralNames(attributesDer.subarray(value.contentStart, value.end)));
      }
    }
  } catch (cause) {
    if (cause instanceof PkiError && cause.code === 'badName')
      throw new PkiError('badCsr', `the CSR asks for a name we do not issue: ${cause.message}`, { cause });
    if (cause instanceof PkiError && cause.code !== 'badDer') throw cause;
    throw new PkiError('badCsr', 'the CSR extension request cannot be parsed', { cause });
  }
  return names;
}

/** Makes a CSR with a CN and SAN names, signed with the given key; used by the CLI and the CA itself. */
export function createCsr(
  privateKey: KeyObject,
  subject: { commonName: string | null; organization?: string | null },
  names: readonly SubjectName[],
): Uint8Array {
  const signer = createSigner(privateKey);
  const attrs: Uint8Array[] = [];
  if (names.length > 0) {
    const ext = sequence(oid(SUBJECT_ALT_NAME), tlv(0x04, encodeGeneralNames(names)));
    attrs.push(sequence(oid(EXTENSION_REQUEST), tlv(0x31, sequence(ext))));
  }
  const info = sequence(integer(0), encodeName(subject), publicKeyOf(privateKey).spki, tlv(0xa0, ...attrs));
  return signTbs(info, signer);
}

/** PEM form of a CSR. */
export const csrToPem = (der: Uint8Array): string => encodePem('CERTIFICATE REQUEST', der);
