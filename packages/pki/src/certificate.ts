import { Buffer } from 'node:buffer';
import { signatureAlgorithmByOid } from './algorithms.js';
import { importPublicKey, verifySignature, type PublicKeyInfo, type Signer } from './crypto.js';
import { readChildren, readOid, readTlv, splitSigned } from './der.js';
import type { IssuerInfo } from './draft.js';
import { PkiError } from './errors.js';
import { parseNameOfKind, type NameKind, type SubjectName } from './names.js';
import { decodePem } from './pem.js';
import { serialToHex } from './serial.js';
import { x509 } from './x509.js';

/** What Shortleaf reads from a certificate: exact name bytes for chaining, plus the decoded fields. */
export interface CertificateInfo {
  der: Uint8Array;
  serial: string;
  subjectDer: Uint8Array;
  issuerDer: Uint8Array;
  subject: string;
  commonName: string | null;
  notBefore: Date;
  notAfter: Date;
  publicKey: PublicKeyInfo;
  subjectKeyIdentifier: Uint8Array | null;
  authorityKeyIdentifier: Uint8Array | null;
  isCa: boolean;
  pathLen: number | undefined;
  names: SubjectName[];
  permittedDns: string[];
  permittedUri: string[];
  /** rfc822Name subtrees: a mailbox, a host, or `.domain` for every host below it. */
  permittedEmail: string[];
  selfSigned: boolean;
}

/**
 * Parses a DER certificate. Structure comes from our DER reader (so name bytes are exact),
 * extensions from @peculiar/x509's object model. Anything unreadable is `badCertificate`.
 */
export function parseCertificate(der: Uint8Array): CertificateInfo {
  try {
    const { tbs } = splitSigned(der);
    const fields = readChildren(tbs, readTlv(tbs, 0));
    const offset = fields[0]?.tag === 0xa0 ? 1 : 0;
    const issuer = fields[offset + 2];
    const subject = fields[offset + 4];
    const spki = fields[offset + 5];
    if (issuer === undefined || subject === undefined || spki === undefined)
      throw new PkiError('badDer', 'TBSCertificate is missing fields');
    const cert = new x509.X509Certificate(der);
    const bc = cert.getExtension(x509.BasicConstraintsExtension);
    const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
    const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    const nc = cert.getExtension('2.5.29.30');
    const subjectDer = tbs.subarray(subject.start, subject.end);
    const issuerDer = tbs.subarray(issuer.start, issuer.end);
    const constraints = nc === null ? { dns: [], uri: [], email: [] } : readNameConstraints(new Uint8Array(nc.value));
    return {
      der,
      serial: serialToHex(new Uint8Array(Buffer.from(cert.serialNumber, 'hex'))),
      subjectDer,
      issuerDer,
      subject: cert.subject,
      commonName: cert.subjectName.getField('CN')[0] ?? null,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      publicKey: importPublicKey(tbs.subarray(spki.start, spki.end)),
      subjectKeyIdentifier: ski === null ? null : new Uint8Array(Buffer.from(ski.keyId, 'hex')),
      authorityKeyIdentifier: aki?.keyId === undefined ? null : new Uint8Array(Buffer.from(aki.keyId, 'hex')),
      isCa: bc?.ca ?? false,
      pathLen: bc?.pathLength,
      names: (san?.names.items ?? []).flatMap((n) =>
        Object.hasOwn(SAN_KINDS, n.type) ? [readName(SAN_KINDS[n.type]!, n.value)] : [],
      ),
      permittedDns: constraints.dns,
      permittedUri: constraints.uri,
      permittedEmail: constraints.email,
      selfSigned: Buffer.from(subjectDer).equals(issuerDer),
    };
  } catch (cause) {
    if (cause instanceof PkiError && cause.code !== 'badDer') throw cause;
    throw new PkiError('badCertificate', `the certificate cannot be parsed: ${(cause as Error).message}`, { cause });
  }
}

// @peculiar/x509's GeneralName types for the kinds we issue.
const SAN_KINDS: Record<string, NameKind> = { dns: 'dns', ip: 'ip', url: 'uri', email: 'email' };

/**
 * A SAN name of the kind its tag says. Reading is not issuing: a certificate already in the field
 * whose name today's rules refuse (issued before they tightened) is read as written, so an agent
 * can still read its own certificate; issuing and renewing parse names strictly.
 */
function readName(kind: NameKind, value: string): SubjectName {
  try {
    return parseNameOfKind(kind, value);
  } catch (cause) {
    if (cause instanceof PkiError && cause.code === 'badName') return { kind, value };
    throw cause;
  }
}

function readNameConstraints(value: Uint8Array): { dns: string[]; uri: string[]; email: string[] } {
  const dns: string[] = [];
  const uri: string[] = [];
  const email: string[] = [];
  for (const subtrees of readChildren(value, readTlv(value, 0))) {
    if (subtrees.tag !== 0xa0) continue; // only permittedSubtrees; we never write excluded ones
    for (const subtree of readChildren(value, subtrees)) {
      const base = readChildren(value, subtree)[0];
      if (base === undefined) continue;
      const text = Buffer.from(value.subarray(base.contentStart, base.end)).toString('ascii');
      if (base.tag === 0x82) dns.push(text);
      if (base.tag === 0x86) uri.push(text);
      if (base.tag === 0x81) email.push(text);
    }
  }
  return { dns, uri, email };
}

/** Reads one certificate from PEM or DER. */
export function readCertificate(input: string | Uint8Array): CertificateInfo {
  if (typeof input !== 'string') return parseCertificate(input);
  const certs = readCertificates(input);
  if (certs.length !== 1) throw new PkiError('badPem', `expected one certificate, found ${certs.length}`);
  return certs[0]!;
}

/** Reads every CERTIFICATE block of a PEM bundle. */
export function readCertificates(pem: string): CertificateInfo[] {
  return decodePem(pem)
    .filter((b) => b.label === 'CERTIFICATE')
    .map((b) => parseCertificate(b.der));
}

/** Whether `cert` carries a valid signature by `issuerKey` and names that issuer byte for byte. */
export function isIssuedBy(cert: CertificateInfo, issuer: CertificateInfo): boolean {
  if (!Buffer.from(cert.issuerDer).equals(issuer.subjectDer)) return false;
  const { tbs, signature } = splitSigned(cert.der);
  const outer = readTlv(cert.der, 0);
  const alg = readChildren(cert.der, outer)[1]!;
  const algOid = readChildren(cert.der, alg)[0];
  if (algOid === undefined) return false;
  return verifySignature(issuer.publicKey, signatureAlgorithmByOid(readOid(cert.der, algOid)), tbs, signature);
}

/** Describes an issuing CA for the builder and the lints, from its certificate and its signer. */
export function issuerInfo(cert: CertificateInfo, signer: Signer): IssuerInfo {
  if (!Buffer.from(cert.publicKey.spki).equals(signer.publicKey.spki)) {
    throw new PkiError('badCertificate', 'the issuing key does not match the issuer certificate');
  }
  if (cert.subjectKeyIdentifier === null)
    throw new PkiError('badCertificate', 'the issuer certificate has no subject key identifier');
  return {
    subjectDer: cert.subjectDer,
    subjectKeyIdentifier: cert.subjectKeyIdentifier,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    permittedDns: cert.permittedDns,
    permittedUri: cert.permittedUri,
    permittedEmail: cert.permittedEmail,
    signer,
  };
}
