import { keyIdentifier, type PublicKeyInfo } from './crypto.js';
import { OID, type CertificateDraft, type IssuerInfo, type KeyUsageName, type ProfileName } from './draft.js';
import { encodeName, type SubjectAttributes } from './encode.js';
import { PkiError } from './errors.js';
import type { SubjectName } from './names.js';

/** What a profile demands of every certificate made with it; the lints check drafts against this. */
export interface ProfileRules {
  ca: boolean;
  pathLen?: number;
  keyUsage(key: PublicKeyInfo): readonly KeyUsageName[];
  /** The EKU OIDs a certificate of this profile carries unless a template chooses others. */
  extKeyUsage: readonly string[];
  /**
   * When set, the EKU may be any non-empty subset of these OIDs (a provisioner's template picks
   * it); when absent, the EKU must be exactly `extKeyUsage`.
   */
  allowedExtKeyUsage?: readonly string[];
  requireSubjectAltName: boolean;
  requireRevocationPointers: boolean;
  selfSigned: boolean;
  /** Whether certificates of this profile carry id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1). */
  ocspNoCheck: boolean;
  /** Longest validity (notBefore to notAfter) a certificate of this profile may have, when bounded. */
  maxValidityMs?: number;
}

/**
 * Longest an OCSP signer may live: a year, plus the ceremony's five-minute backdate. With
 * id-pkix-ocsp-nocheck it cannot be revoked (RFC 6960 §4.2.2.2.1), so its lifetime is the whole
 * exposure should its key (online, on the CA server) leak; the ceremony's default is 90 days.
 */
export const MAX_OCSP_SIGNER_VALIDITY_MS = 366 * 86_400_000 + 5 * 60_000;

/** Extended key usages a leaf may carry; a template names them by these keys. */
export type ExtKeyUsageName = 'serverAuth' | 'clientAuth' | 'codeSigning' | 'emailProtection' | 'timeStamping';

// One row per usage a leaf may be given (RFC 5280 §4.2.1.12), looked up by name.
const LEAF_EXT_KEY_USAGES: Record<ExtKeyUsageName, string> = {
  serverAuth: OID.serverAuth,
  clientAuth: OID.clientAuth,
  codeSigning: '1.3.6.1.5.5.7.3.3',
  emailProtection: '1.3.6.1.5.5.7.3.4',
  timeStamping: '1.3.6.1.5.5.7.3.8',
};

/** anyExtendedKeyUsage (RFC 5280 §4.2.1.12): "any purpose", which no leaf of ours may claim. */
export const ANY_EXT_KEY_USAGE = '2.5.29.37.0';

// Usages a leaf may never carry, and why: said by name so a configuration mistake reads clearly.
const REFUSED_EXT_KEY_USAGES: Record<string, string> = {
  OCSPSigning: "only the CA's own delegated OCSP responder signs OCSP responses (RFC 6960 §4.2.2.2)",
  anyExtendedKeyUsage: 'it would let the certificate be used for any purpose (RFC 5280 §4.2.1.12)',
};

/** The names a template may use in `extKeyUsage`. */
export const EXT_KEY_USAGE_NAMES = Object.keys(LEAF_EXT_KEY_USAGES) as readonly ExtKeyUsageName[];

/** Looks up a leaf extended key usage by name; throws `badExtKeyUsage` for a refused or unknown one. */
export function extKeyUsageOid(name: string): string {
  const refused = Object.hasOwn(REFUSED_EXT_KEY_USAGES, name) ? REFUSED_EXT_KEY_USAGES[name] : undefined;
  if (refused !== undefined) throw new PkiError('badExtKeyUsage', `extended key usage ${name} is refused: ${refused}`);
  const oidValue = Object.hasOwn(LEAF_EXT_KEY_USAGES, name) ? LEAF_EXT_KEY_USAGES[name as ExtKeyUsageName] : undefined;
  if (oidValue === undefined)
    throw new PkiError(
      'badExtKeyUsage',
      `unknown extended key usage ${JSON.stringify(name)} (known: ${EXT_KEY_USAGE_NAMES.join(', ')})`,
    );
  return oidValue;
}

// One row per profile, jose-style: looked up by name, never branched on inline.
const PROFILES: Record<ProfileName, ProfileRules> = {
  root: {
    ca: true,
    keyUsage: () => ['keyCertSign', 'cRLSign'],
    extKeyUsage: [],
    requireSubjectAltName: false,
    requireRevocationPointers: false,
    selfSigned: true,
    ocspNoCheck: false,
  },
  intermediate: {
    ca: true,
    pathLen: 0,
    keyUsage: () => ['keyCertSign', 'cRLSign'],
    extKeyUsage: [],
    requireSubjectAltName: false,
    requireRevocationPointers: false,
    selfSigned: false,
    ocspNoCheck: false,
  },
  leaf: {
    ca: false,
    // RFC 8813/5480: keyEncipherment only makes sense for RSA key transport.
    keyUsage: (key) => (key.type.keyType === 'rsa' ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature']),
    extKeyUsage: [OID.serverAuth, OID.clientAuth],
    allowedExtKeyUsage: Object.values(LEAF_EXT_KEY_USAGES),
    requireSubjectAltName: true,
    requireRevocationPointers: true,
    selfSigned: false,
    ocspNoCheck: false,
  },
  // RFC 6960 §4.2.2.2: a delegated responder, issued by the CA whose certificates it speaks for.
  // No revocation pointers: with id-pkix-ocsp-nocheck nobody checks the responder's own status.
  'ocsp-signer': {
    ca: false,
    keyUsage: () => ['digitalSignature'],
    extKeyUsage: [OID.ocspSigning],
    requireSubjectAltName: false,
    requireRevocationPointers: false,
    selfSigned: false,
    ocspNoCheck: true,
    maxValidityMs: MAX_OCSP_SIGNER_VALIDITY_MS,
  },
};

/** Looks up a profile's rules by name. */
export function profileRules(name: ProfileName): ProfileRules {
  return PROFILES[name];
}

/** Where relying parties find revocation data and the issuer; leaves embed these URLs. */
export interface PublicUrls {
  ocsp: string;
  caIssuers: string;
  crl: string;
}

/** ub-common-name (RFC 5280 Appendix A): longer subjects go in the SAN only. */
export const MAX_COMMON_NAME = 64;

export interface LeafInput {
  serial: Uint8Array;
  commonName: string | null;
  names: readonly SubjectName[];
  publicKey: PublicKeyInfo;
  notBefore: Date;
  notAfter: Date;
  issuer: IssuerInfo;
  urls: PublicUrls;
  /** Subject attributes besides the common name, from the provisioner's template. */
  subject?: SubjectAttributes;
  /** The leaf's extended key usages, from the provisioner's template; serverAuth and clientAuth when absent. */
  extKeyUsage?: readonly ExtKeyUsageName[];
}

/**
 * Drafts an end-entity certificate for mTLS: short-lived, never a CA, serverAuth and clientAuth
 * unless the provisioner's template names other usages from the leaf table.
 */
export function leafDraft(input: LeafInput): CertificateDraft {
  const rules = PROFILES.leaf;
  const cn = input.commonName !== null && input.commonName.length <= MAX_COMMON_NAME ? input.commonName : null;
  return {
    profile: 'leaf',
    serial: input.serial,
    issuerDer: input.issuer.subjectDer,
    subjectDer: encodeName({ ...input.subject, commonName: cn }),
    commonName: cn,
    notBefore: input.notBefore,
    notAfter: input.notAfter,
    publicKey: input.publicKey,
    basicConstraints: { ca: false },
    keyUsage: rules.keyUsage(input.publicKey),
    extKeyUsage: input.extKeyUsage === undefined ? rules.extKeyUsage : input.extKeyUsage.map(extKeyUsageOid),
    subjectKeyIdentifier: keyIdentifier(input.publicKey.spki),
    authorityKeyIdentifier: input.issuer.subjectKeyIdentifier,
    subjectAltNames: input.names,
    ocspUrls: [input.urls.ocsp],
    caIssuersUrls: [input.urls.caIssuers],
    crlUrls: [input.urls.crl],
    nameConstraints: null,
    ocspNoCheck: false,
  };
}

export interface CaInput {
  serial: Uint8Array;
  subjectDer: Uint8Array;
  commonName: string;
  publicKey: PublicKeyInfo;
  notBefore: Date;
  notAfter: Date;
}

/** Drafts a self-signed root: CA without a path length limit, no AKI (RFC 5280 §4.2.1.1 allows it). */
export function rootDraft(input: CaInput): CertificateDraft {
  return {
    profile: 'root',
    serial: input.serial,
    issuerDer: input.subjectDer,
    subjectDer: input.subjectDer,
    commonName: input.commonName,
    notBefore: input.notBefore,
    notAfter: input.notAfter,
    publicKey: input.publicKey,
    basicConstraints: { ca: true },
    keyUsage: PROFILES.root.keyUsage(input.publicKey),
    extKeyUsage: [],
    subjectKeyIdentifier: keyIdentifier(input.publicKey.spki),
    authorityKeyIdentifier: null,
    subjectAltNames: [],
    ocspUrls: [],
    caIssuersUrls: [],
    crlUrls: [],
    nameConstraints: null,
    ocspNoCheck: false,
  };
}

/**
 * Where relying parties find an intermediate's own status and issuer: the root's certificate and
 * CRL, and (when the root delegated a responder for it) OCSP. Without them a verifier that checks
 * the whole chain (NSS with OCSP for every certificate) cannot learn the intermediate's status.
 */
export interface IntermediateUrls {
  /** Absent when the ceremony delegated no OCSP responder: a URL nobody answers for would fail chains. */
  ocsp?: string;
  caIssuers: string;
  crl: string;
}

/** Drafts an intermediate under a root: pathLen 0, optional permitted-subtree name constraints, optional AIA and CRL DP. */
export function intermediateDraft(
  input: CaInput & {
    issuer: IssuerInfo;
    permitDns: readonly string[];
    permitUri: readonly string[];
    urls?: IntermediateUrls;
  },
): CertificateDraft {
  const constrained = input.permitDns.length + input.permitUri.length > 0;
  return {
    ...rootDraft(input),
    profile: 'intermediate',
    issuerDer: input.issuer.subjectDer,
    basicConstraints: { ca: true, pathLen: 0 },
    keyUsage: PROFILES.intermediate.keyUsage(input.publicKey),
    authorityKeyIdentifier: input.issuer.subjectKeyIdentifier,
    nameConstraints: constrained ? { permittedDns: input.permitDns, permittedUri: input.permitUri } : null,
    ocspUrls: input.urls?.ocsp === undefined ? [] : [input.urls.ocsp],
    caIssuersUrls: input.urls === undefined ? [] : [input.urls.caIssuers],
    crlUrls: input.urls === undefined ? [] : [input.urls.crl],
  };
}

export interface OcspSignerInput {
  serial: Uint8Array;
  subjectDer: Uint8Array;
  commonName: string;
  publicKey: PublicKeyInfo;
  notBefore: Date;
  notAfter: Date;
  issuer: IssuerInfo;
}

/**
 * Drafts a delegated OCSP responder certificate (RFC 6960 §4.2.2.2): issued directly by the CA
 * whose certificates it answers for, id-kp-OCSPSigning only, and id-pkix-ocsp-nocheck so clients
 * do not ask about the responder itself. Keep it short-lived: nocheck means it cannot be revoked
 * (the lints refuse one longer than MAX_OCSP_SIGNER_VALIDITY_MS).
 */
export function ocspSignerDraft(input: OcspSignerInput): CertificateDraft {
  const rules = PROFILES['ocsp-signer'];
  return {
    profile: 'ocsp-signer',
    serial: input.serial,
    issuerDer: input.issuer.subjectDer,
    subjectDer: input.subjectDer,
    commonName: input.commonName,
    notBefore: input.notBefore,
    notAfter: input.notAfter,
    publicKey: input.publicKey,
    basicConstraints: { ca: false },
    keyUsage: rules.keyUsage(input.publicKey),
    extKeyUsage: rules.extKeyUsage,
    subjectKeyIdentifier: keyIdentifier(input.publicKey.spki),
    authorityKeyIdentifier: input.issuer.subjectKeyIdentifier,
    subjectAltNames: [],
    ocspUrls: [],
    caIssuersUrls: [],
    crlUrls: [],
    nameConstraints: null,
    ocspNoCheck: rules.ocspNoCheck,
  };
}
