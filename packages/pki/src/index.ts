export { PkiError, type PkiErrorCode } from './errors.js';
export { decodePem, decodePemOne, encodePem, encodeCertificates, type PemBlock } from './pem.js';
export {
  KEY_TYPE_NAMES,
  keyTypeByName,
  signatureAlgorithmByOid,
  type KeyTypeName,
  type KeyTypeRow,
  type SignatureAlgorithm,
} from './algorithms.js';
export {
  RSA_MAX_BITS,
  RSA_MIN_BITS,
  createSigner,
  exportEncryptedPrivateKey,
  exportPrivateKey,
  generateKeyPair,
  importPrivateKey,
  importPrivateKeyPem,
  importPublicKey,
  keyIdentifier,
  publicKeyOf,
  samePublicKey,
  sha256,
  verifySignature,
  type KeyObject,
  type PublicKeyInfo,
  type Signer,
} from './crypto.js';
export { RSA_PUBLIC_EXPONENT, checkRsaPublicKey, rsaParameters } from './rsa-key.js';
export {
  embeddedIpv4,
  formatIp,
  ipInNetwork,
  parseCidr,
  parseIp,
  specialAddress,
  type SpecialAddressKind,
} from './ip.js';
export {
  EMAIL_LOCAL_PART,
  MAX_NAME_LENGTH,
  nameToString,
  namePolicyRuleCount,
  parseName,
  parseNameOfKind,
  policyRefusal,
  validateNamePolicy,
  type NameKind,
  type NamePolicy,
  type SubjectName,
} from './names.js';
export { parseUri, parseUriPattern, uriPatternMatches, type ParsedUri, type UriPattern } from './uri.js';
export { newSerial, normalizeSerial, serialToHex } from './serial.js';
export { OID, type CertificateDraft, type IssuerInfo, type KeyUsageName, type ProfileName } from './draft.js';
export { SUBJECT_ATTRIBUTE_NAMES, encodeName, type SubjectAttributes } from './encode.js';
export {
  EXT_KEY_USAGE_NAMES,
  MAX_COMMON_NAME,
  MAX_OCSP_SIGNER_VALIDITY_MS,
  extKeyUsageOid,
  intermediateDraft,
  leafDraft,
  ocspSignerDraft,
  profileRules,
  rootDraft,
  type CaInput,
  type ExtKeyUsageName,
  type IntermediateUrls,
  type LeafInput,
  type OcspSignerInput,
  type ProfileRules,
  type PublicUrls,
} from './profiles.js';
export { LINTS, assertLintClean, lintDraft, type Lint, type LintContext } from './lints/index.js';
export { withinConstraints } from './lints/names.js';
export { readRevocationPointers, type RevocationPointers } from './revocation-pointers.js';
export {
  readNameConstraintSet,
  subtreeWithin,
  widerConstraints,
  type ConstraintKind,
  type NameConstraintSet,
  type Subtree,
} from './name-constraints.js';
export { lintAndSign, signDraft } from './sign.js';
export { lintTbs, prepareCertificate, signPrepared, type PreparedCertificate } from './prepare.js';
export { TBS_LINTS, type TbsLint, type TbsLintContext } from './lints/tbs.js';
export { readTbsCertificate, type TbsView } from './tbs-certificate.js';
export { MAX_CSR_BYTES, createCsr, csrToPem, parseCsr, type ParsedCsr } from './csr.js';
export {
  isIssuedBy,
  issuerInfo,
  parseCertificate,
  readCertificate,
  readCertificates,
  type CertificateInfo,
} from './certificate.js';
export { REVOCATION_REASONS, reasonCode, reasonName, type RevocationReason } from './revocation-reasons.js';
export { buildCrl, isCrlSignedBy, parseCrl, type CrlEntry, type CrlInput, type ParsedCrl } from './crl.js';
export { lintCrl, readCrlView } from './crl-lint.js';
export { lintOcspResponse, readOcspResponseView } from './ocsp-lint.js';
export { OCSP_LINTS, type OcspLint, type OcspLintContext, type OcspResponseView } from './lints/ocsp.js';
export { CRL_LINTS, type CrlLint, type CrlLintContext, type CrlView } from './lints/crl.js';
export {
  MAX_OCSP_CERT_IDS,
  MAX_OCSP_REQUEST_BYTES,
  issuerHashes,
  minimalOcspRequest,
  parseOcspRequest,
  type CertId,
  type OcspHash,
  type OcspRequest,
} from './ocsp-request.js';
export {
  buildOcspResponse,
  ocspErrorResponse,
  responderKeyHash,
  type OcspCertStatus,
  type OcspResponder,
  type OcspSingleResponse,
} from './ocsp-response.js';
