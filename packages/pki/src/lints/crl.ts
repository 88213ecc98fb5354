import { Buffer } from 'node:buffer';
import type { SignatureAlgorithm } from '../algorithms.js';
import type { ParsedCrl } from '../crl.js';
import { algorithmIdentifier } from '../encode.js';

/** A CRL as the lints read it back from its bytes. */
export interface CrlView {
  crl: ParsedCrl;
  /** The Issuing Distribution Point, if present: its criticality and the fullName URLs. */
  idp: { critical: boolean; urls: string[]; onlyFullName: boolean } | null;
  /** AlgorithmIdentifier inside TBSCertList and outside it, as DER. */
  innerAlgorithmDer: Uint8Array;
  outerAlgorithmDer: Uint8Array;
}

/** What a CRL is checked against before it is published. */
export interface CrlLintContext {
  issuer: { subjectDer: Uint8Array; subjectKeyIdentifier: Uint8Array; algorithm: SignatureAlgorithm };
  /** The number of the last CRL published for this issuer; null for the first. */
  previousNumber: bigint | null;
  /** The URLs the covered certificates carry as CRL distribution point; null when the CRL has no IDP (a root's). */
  distributionPoints: readonly string[] | null;
  /** The configured thisUpdate → nextUpdate. */
  validityMs: number;
  now: Date;
}

/** One concern checked on a CRL's bytes before anyone can fetch them. */
export interface CrlLint {
  name: string;
  check(view: CrlView, ctx: CrlLintContext): string | null;
}

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(b);

/** RFC 5280 §5.2.3: conforming CRL issuers MUST include the CRL number. */
export const crlNumberPresent: CrlLint = {
  name: 'crl_number_present',
  check: ({ crl }) => (crl.number === null ? 'the CRL has no CRLNumber' : null),
};

/** RFC 5280 §5.2.3: CRL numbers increase monotonically, so a relying party can tell which CRL supersedes another. */
export const crlNumberGrows: CrlLint = {
  name: 'crl_number_grows',
  check: ({ crl }, { previousNumber }) => {
    if (crl.number === null || previousNumber === null) return null;
    return crl.number > previousNumber
      ? null
      : `CRLNumber ${crl.number} does not exceed the last published ${previousNumber}`;
  },
};

/** RFC 5280 §5.2.1: the AKI names the key that signs the CRL, the issuer's SKI. */
export const crlAuthorityKeyIdentifierMatchesIssuer: CrlLint = {
  name: 'crl_authority_key_identifier_matches_issuer',
  check: ({ crl }, { issuer }) => {
    if (crl.authorityKeyIdentifier === null) return 'the CRL has no AuthorityKeyIdentifier';
    return same(crl.authorityKeyIdentifier, issuer.subjectKeyIdentifier)
      ? null
      : "AuthorityKeyIdentifier is not the issuer's SKI";
  },
};

/** RFC 5280 §5.1.2.3: the issuer field is the issuer's subject, byte for byte, or no verifier will match it. */
export const crlIssuerMatchesIssuer: CrlLint = {
  name: 'crl_issuer_matches_issuer',
  check: ({ crl }, { issuer }) =>
    same(crl.issuerDer, issuer.subjectDer) ? null : "the CRL's issuer is not the issuer's subject name",
};

/**
 * RFC 5280 §5.2.5: the Issuing Distribution Point is critical and its fullName names exactly the
 * URLs the covered certificates point at (OpenSSL finds any other CRL out of scope); a root's CRL
 * carries none.
 */
export const crlIssuingDistributionPointMatches: CrlLint = {
  name: 'crl_issuing_distribution_point_matches',
  check: ({ idp }, { distributionPoints }) => {
    if (distributionPoints === null)
      return idp === null ? null : 'the CRL has an Issuing Distribution Point where none is expected';
    if (idp === null) return 'the CRL has no Issuing Distribution Point';
    if (!idp.critical) return 'the Issuing Distribution Point is not critical';
    if (!idp.onlyFullName) return 'the Issuing Distribution Point carries more than a fullName of URIs';
    return idp.urls.join(' ') === distributionPoints.join(' ')
      ? null
      : `the Issuing Distribution Point names [${idp.urls.join(', ')}], not [${distributionPoints.join(', ')}]`;
  },
};

/** RFC 5280 §5.1.2.5: conforming CAs include nextUpdate, later than thisUpdate. */
export const crlNextUpdateAfterThisUpdate: CrlLint = {
  name: 'crl_next_update_after_this_update',
  check: ({ crl }) => {
    if (crl.nextUpdate === null) return 'the CRL has no nextUpdate';
    return crl.nextUpdate.getTime() > crl.thisUpdate.getTime() ? null : 'nextUpdate is not after thisUpdate';
  },
};

/** RFC 5280 §5.1.2.4: thisUpdate is the issue date of this CRL, never a time still to come. */
export const crlThisUpdateNotInFuture: CrlLint = {
  name: 'crl_this_update_not_in_future',
  check: ({ crl }, { now }) =>
    crl.thisUpdate.getTime() <= now.getTime() ? null : `thisUpdate ${crl.thisUpdate.toISOString()} is after now`,
};

/** RFC 5280 §5.1.2.5, as configured: the CRL is valid no longer than `crl.validity` says. */
export const crlValidityWithinConfigured: CrlLint = {
  name: 'crl_validity_within_configured',
  check: ({ crl }, { validityMs }) => {
    if (crl.nextUpdate === null) return null;
    const ms = crl.nextUpdate.getTime() - crl.thisUpdate.getTime();
    return ms <= validityMs ? null : `the CRL is valid ${ms} ms, more than the configured ${validityMs} ms`;
  },
};

/** RFC 5280 §5.1.2.6: each revoked certificate is listed once, by its serial. */
export const crlSerialsUnique: CrlLint = {
  name: 'crl_serials_unique',
  check: ({ crl }) => {
    const seen = new Set<string>();
    for (const e of crl.entries) {
      if (seen.has(e.serial)) return `serial ${e.serial} is listed twice`;
      seen.add(e.serial);
    }
    return null;
  },
};

/** RFC 5280 §5.1.1.2 and §5.1.2.2: both AlgorithmIdentifiers are the one the issuer's key signs with. */
export const crlSignatureAlgorithmMatchesIssuerKey: CrlLint = {
  name: 'crl_signature_algorithm_matches_issuer_key',
  check: (v, { issuer }) => {
    const want = algorithmIdentifier(issuer.algorithm);
    return same(v.innerAlgorithmDer, want) && same(v.outerAlgorithmDer, want)
      ? null
      : `the CRL's signature algorithm is not ${issuer.algorithm.name}`;
  },
};

/** Every CRL lint, run on every CRL before it is stored and served. */
export const CRL_LINTS: readonly CrlLint[] = [
  crlNumberPresent,
  crlNumberGrows,
  crlAuthorityKeyIdentifierMatchesIssuer,
  crlIssuerMatchesIssuer,
  crlIssuingDistributionPointMatches,
  crlNextUpdateAfterThisUpdate,
  crlThisUpdateNotInFuture,
  crlValidityWithinConfigured,
  crlSerialsUnique,
  crlSignatureAlgorithmMatchesIssuerKey,
];
