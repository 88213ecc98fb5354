import type { PublicKeyInfo, Signer } from './crypto.js';
import type { SubjectName } from './names.js';

export type ProfileName = 'root' | 'intermediate' | 'leaf' | 'ocsp-signer';

export type KeyUsageName = 'digitalSignature' | 'keyEncipherment' | 'keyCertSign' | 'cRLSign';

/** The issuing CA as the builder and the lints need it. */
export interface IssuerInfo {
  /** DER of the issuer's subject Name, copied byte for byte into the issuer field. */
  subjectDer: Uint8Array;
  subjectKeyIdentifier: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  /** The issuer's own name constraints (RFC 5280 §4.2.1.10), so we never sign a name that fails them. */
  permittedDns: readonly string[];
  permittedUri: readonly string[];
  permittedEmail: readonly string[];
  signer: Signer;
}

/**
 * A certificate before it is encoded: every field the profile decides, in a form the lints can
 * read without parsing DER. The encoder turns exactly this into the to-be-signed bytes.
 */
export interface CertificateDraft {
  profile: ProfileName;
  serial: Uint8Array;
  /** DER Name for the issuer field; for a root, its own subject. */
  issuerDer: Uint8Array;
  /** DER Name for the subject field. */
  subjectDer: Uint8Array;
  /** Common name in the subject, if any, for the lints. */
  commonName: string | null;
  notBefore: Date;
  notAfter: Date;
  publicKey: PublicKeyInfo;
  basicConstraints: { ca: boolean; pathLen?: number };
  keyUsage: readonly KeyUsageName[];
  extKeyUsage: readonly string[];
  subjectKeyIdentifier: Uint8Array;
  authorityKeyIdentifier: Uint8Array | null;
  subjectAltNames: readonly SubjectName[];
  ocspUrls: readonly string[];
  caIssuersUrls: readonly string[];
  crlUrls: readonly string[];
  nameConstraints: { permittedDns: readonly string[]; permittedUri: readonly string[] } | null;
  /** id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1), carried by delegated OCSP responder certificates only. */
  ocspNoCheck: boolean;
}

export const OID = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  ocspSigning: '1.3.6.1.5.5.7.3.9',
  ocspNoCheck: '1.3.6.1.5.5.7.48.1.5',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
} as const;
