import { Buffer } from 'node:buffer';
import { OID } from '../draft.js';
import { ANY_EXT_KEY_USAGE } from '../profiles.js';
import type { Lint } from './lint.js';

const same = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && a.every((x) => b.includes(x));

/** RFC 5280 §4.2.1.9: CA flag and path length exactly as the profile says (the encoder marks it critical). */
export const basicConstraintsMatchProfile: Lint = {
  name: 'basic_constraints_match_profile',
  check: (d, { rules }) => {
    if (d.basicConstraints.ca !== rules.ca)
      return `BasicConstraints cA is ${d.basicConstraints.ca}, the ${d.profile} profile needs ${rules.ca}`;
    if (d.basicConstraints.pathLen !== rules.pathLen)
      return `pathLenConstraint is ${String(d.basicConstraints.pathLen)}, the profile needs ${String(rules.pathLen)}`;
    return null;
  },
};

/** RFC 5280 §4.2.1.3: key usage present and exactly the profile's bits for this key type. */
export const keyUsageMatchesProfile: Lint = {
  name: 'key_usage_matches_profile',
  check: (d, { rules }) => {
    const want = rules.keyUsage(d.publicKey);
    return same(d.keyUsage, want)
      ? null
      : `KeyUsage is [${d.keyUsage.join(', ')}], the ${d.profile} profile needs [${want.join(', ')}]`;
  },
};

/**
 * RFC 5280 §4.2.1.12: CA certificates carry no EKU and OCSP signers exactly OCSPSigning; a leaf
 * carries a non-empty, duplicate-free subset of the leaf table (its template chooses which), and
 * never OCSPSigning (RFC 6960 §4.2.2.2: that would make it a responder for our certificates) nor
 * anyExtendedKeyUsage (which would let it serve any purpose).
 */
export const extKeyUsageWithinProfile: Lint = {
  name: 'ext_key_usage_within_profile',
  check: (d, { rules }) => {
    const allowed = rules.allowedExtKeyUsage;
    if (allowed === undefined)
      return same(d.extKeyUsage, rules.extKeyUsage)
        ? null
        : `ExtendedKeyUsage [${d.extKeyUsage.join(', ')}] differs from the profile's`;
    if (d.extKeyUsage.length === 0) return `a ${d.profile} needs at least one ExtendedKeyUsage`;
    if (new Set(d.extKeyUsage).size !== d.extKeyUsage.length) return 'an ExtendedKeyUsage appears twice';
    const forbidden = d.extKeyUsage.find((u) => u === OID.ocspSigning || u === ANY_EXT_KEY_USAGE);
    if (forbidden !== undefined) return `ExtendedKeyUsage ${forbidden} is never allowed on a ${d.profile}`;
    const outside = d.extKeyUsage.find((u) => !allowed.includes(u));
    return outside === undefined ? null : `ExtendedKeyUsage ${outside} is not in the ${d.profile} profile's table`;
  },
};

/** RFC 5280 §4.2.1.2: every certificate we make has a 20-byte subject key identifier. */
export const subjectKeyIdentifierPresent: Lint = {
  name: 'subject_key_identifier_present',
  check: (d) => (d.subjectKeyIdentifier.length === 20 ? null : 'SubjectKeyIdentifier is missing or not 20 bytes'),
};

/** RFC 5280 §4.2.1.1: the AKI of an issued certificate equals the issuer's SKI, or chains break. */
export const authorityKeyIdentifierMatchesIssuer: Lint = {
  name: 'authority_key_identifier_matches_issuer',
  check: (d, ctx) => {
    if (ctx.issuer === null)
      return d.authorityKeyIdentifier === null || Buffer.from(d.authorityKeyIdentifier).equals(d.subjectKeyIdentifier)
        ? null
        : 'a root AKI must equal its own SKI';
    if (d.authorityKeyIdentifier === null) return 'AuthorityKeyIdentifier is missing';
    return Buffer.from(d.authorityKeyIdentifier).equals(ctx.issuer.subjectKeyIdentifier)
      ? null
      : "AuthorityKeyIdentifier is not the issuer's SKI";
  },
};

/**
 * RFC 5280 §4.2.2.1 and §4.2.1.13: leaves point at OCSP, the issuer certificate and the CRL, over
 * http; any certificate that carries such pointers (an intermediate) carries them over http too.
 */
export const revocationPointersPresent: Lint = {
  name: 'revocation_pointers_present',
  check: (d, { rules }) => {
    const urls = [...d.ocspUrls, ...d.caIssuersUrls, ...d.crlUrls];
    if (
      rules.requireRevocationPointers &&
      (d.ocspUrls.length === 0 || d.caIssuersUrls.length === 0 || d.crlUrls.length === 0)
    )
      return 'AIA (OCSP, caIssuers) and CRL distribution point are all required';
    // RFC 5280 §4.2.2.1: fetching revocation data over https would need revocation data to check first.
    const bad = urls.find((u) => !u.startsWith('http://'));
    return bad === undefined ? null : `revocation URL ${bad} must be plain http://`;
  },
};

/** RFC 5280 §4.2.1.10: name constraints belong on CA certificates only. */
export const nameConstraintsOnlyOnCa: Lint = {
  name: 'name_constraints_only_on_ca',
  check: (d) =>
    d.nameConstraints !== null && !d.basicConstraints.ca ? 'name constraints on a non-CA certificate' : null,
};

/** A leaf must never carry its issuer's key: that would hand out a second CA identity. */
export const keyIsNotIssuerKey: Lint = {
  name: 'key_is_not_issuer_key',
  check: (d, ctx) => {
    if (ctx.issuer === null || d.profile === 'root') return null;
    return Buffer.from(d.publicKey.spki).equals(ctx.issuer.signer.publicKey.spki)
      ? "the certificate's key is its issuer's key"
      : null;
  },
};

/**
 * RFC 6960 §4.2.2.2.1: id-pkix-ocsp-nocheck tells clients never to check a certificate's status, so
 * it belongs on delegated OCSP responder certificates only; on a leaf it would make that leaf
 * unrevocable in practice. The OCSP signer profile always carries it.
 */
export const ocspNoCheckOnlyOnOcspSigners: Lint = {
  name: 'ocsp_no_check_only_on_ocsp_signers',
  check: (d, { rules }) => {
    if (d.ocspNoCheck === rules.ocspNoCheck) return null;
    return d.ocspNoCheck
      ? `id-pkix-ocsp-nocheck on a ${d.profile} certificate; only OCSP signers carry it`
      : `the ${d.profile} profile needs id-pkix-ocsp-nocheck`;
  },
};
