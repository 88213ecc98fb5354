import { Buffer } from 'node:buffer';
import type { SignatureAlgorithm } from '../algorithms.js';
import type { CertificateDraft } from '../draft.js';
import { algorithmIdentifier } from '../encode.js';
import { nameToString } from '../names.js';
import { EXTENSION_OIDS, type TbsView } from '../tbs-certificate.js';

/** What a byte-level lint compares the parsed TBSCertificate with. */
export interface TbsLintContext {
  /** The exact bytes about to be signed. */
  tbs: Uint8Array;
  /** The draft they were encoded from. */
  intended: CertificateDraft;
  /** The algorithm the issuer's key signs with. */
  algorithm: SignatureAlgorithm;
}

/** One concern about the encoded bytes, checked on what an independent parser read back. */
export interface TbsLint {
  name: string;
  check(view: TbsView, ctx: TbsLintContext): string | null;
}

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(b);

/** RFC 5280 §4.1: certificates are DER; an independent encoder writes the parsed value back byte for byte. */
export const tbsIsDer: TbsLint = {
  name: 'tbs_is_der',
  check: (v, { tbs }) => {
    if (!same(v.reencoded, tbs))
      return 'the TBSCertificate is not in DER: re-encoding what was parsed gives other bytes';
    return v.notDer.length === 0 ? null : `not in DER: ${v.notDer.join(', ')}`;
  },
};

/** RFC 5280 §4.1.2.1: a certificate with extensions is v3 (version field 2). */
export const tbsVersionIsV3: TbsLint = {
  name: 'tbs_version_is_v3',
  check: (v) => (v.version === 2 ? null : `version field is ${v.version}, v3 (2) expected`),
};

/** RFC 5280 §4.1.2.3 (and RFC 5754 §3.2 for parameters): the TBS names the algorithm the issuer's key signs with. */
export const tbsSignatureAlgorithmMatchesIssuerKey: TbsLint = {
  name: 'tbs_signature_algorithm_matches_issuer_key',
  check: (v, { algorithm }) =>
    same(v.signatureAlgorithmDer, algorithmIdentifier(algorithm))
      ? null
      : `the signature AlgorithmIdentifier is not ${algorithm.name}`,
};

/** RFC 5280 §4.2: "A certificate MUST NOT include more than one instance of a particular extension." */
export const tbsExtensionsUnique: TbsLint = {
  name: 'tbs_extensions_unique',
  check: (v) => {
    const ids = v.extensions.map((e) => e.id);
    const twice = ids.find((id, i) => ids.indexOf(id) !== i);
    return twice === undefined ? null : `extension ${twice} appears twice`;
  },
};

/**
 * Criticality as RFC 5280 requires it: BasicConstraints (§4.2.1.9), KeyUsage (§4.2.1.3) and
 * NameConstraints (§4.2.1.10) critical; SAN critical when the subject is empty (§4.2.1.6: MUST;
 * with a subject it only SHOULD not be, and the encoder marks it critical whenever there is no CN);
 * the key identifiers (§4.2.1.1, §4.2.1.2) and the pointers (§4.2.2.1, §4.2.1.13) not critical.
 */
export const tbsExtensionCriticality: TbsLint = {
  name: 'tbs_extension_criticality',
  check: (v) => {
    const emptySubject = v.draft.subjectDer.length === 2;
    const san = v.extensions.find((e) => e.id === EXTENSION_OIDS.subjectAltName);
    if (emptySubject && san !== undefined && !san.critical) return 'the subject is empty and the SAN is not critical';
    const want: Record<string, boolean> = {
      [EXTENSION_OIDS.basicConstraints]: true,
      [EXTENSION_OIDS.keyUsage]: true,
      [EXTENSION_OIDS.nameConstraints]: true,
      [EXTENSION_OIDS.subjectKeyIdentifier]: false,
      [EXTENSION_OIDS.authorityKeyIdentifier]: false,
      [EXTENSION_OIDS.authorityInfoAccess]: false,
      [EXTENSION_OIDS.crlDistributionPoints]: false,
      [EXTENSION_OIDS.extKeyUsage]: false,
      [EXTENSION_OIDS.ocspNoCheck]: false,
    };
    const wrong = v.extensions.find((e) => Object.hasOwn(want, e.id) && want[e.id] !== e.critical);
    return wrong === undefined ? null : `extension ${wrong.id} is ${wrong.critical ? '' : 'not '}critical`;
  },
};

/** Shortleaf's profiles: nothing in the bytes that no profile writes (unique IDs, other extensions, other name kinds). */
export const tbsHoldsOnlyProfileFields: TbsLint = {
  name: 'tbs_holds_only_profile_fields',
  check: (v) => (v.unexpected.length === 0 ? null : v.unexpected.join(', ')),
};

const names = (list: readonly { kind: string; value: string }[]): string =>
  list.map((n) => nameToString(n as never)).join(',');
const sorted = (list: readonly string[]): string => [...list].sort().join(',');

/**
 * The bytes say what the draft said: the encoder is hand-written, so every field it wrote is read
 * back by another parser and compared with what the profile decided (Boulder's precert.Correspond
 * in spirit). A difference is an encoder bug, whatever the other lints think of the result.
 */
export const tbsMatchesDraft: TbsLint = {
  name: 'tbs_matches_draft',
  check: ({ draft: got }, { intended: want }) => {
    const fields: Array<[string, boolean]> = [
      ['serial', same(got.serial, want.serial)],
      ['issuer', same(got.issuerDer, want.issuerDer)],
      ['subject', same(got.subjectDer, want.subjectDer) && got.commonName === want.commonName],
      ['notBefore', got.notBefore.getTime() === want.notBefore.getTime()],
      ['notAfter', got.notAfter.getTime() === want.notAfter.getTime()],
      ['subjectPublicKeyInfo', same(got.publicKey.spki, want.publicKey.spki)],
      [
        'basicConstraints',
        got.basicConstraints.ca === want.basicConstraints.ca &&
          got.basicConstraints.pathLen === want.basicConstraints.pathLen,
      ],
      ['keyUsage', sorted(got.keyUsage) === sorted(want.keyUsage)],
      ['extKeyUsage', got.extKeyUsage.join(',') === want.extKeyUsage.join(',')],
      ['subjectKeyIdentifier', same(got.subjectKeyIdentifier, want.subjectKeyIdentifier)],
      [
        'authorityKeyIdentifier',
        got.authorityKeyIdentifier === null
          ? want.authorityKeyIdentifier === null
          : want.authorityKeyIdentifier !== null && same(got.authorityKeyIdentifier, want.authorityKeyIdentifier),
      ],
      ['subjectAltName', names(got.subjectAltNames) === names(want.subjectAltNames)],
      ['ocspUrls', got.ocspUrls.join(' ') === want.ocspUrls.join(' ')],
      ['caIssuersUrls', got.caIssuersUrls.join(' ') === want.caIssuersUrls.join(' ')],
      ['crlUrls', got.crlUrls.join(' ') === want.crlUrls.join(' ')],
      [
        'nameConstraints',
        JSON.stringify(got.nameConstraints) ===
          JSON.stringify(
            want.nameConstraints === null
              ? null
              : {
                  permittedDns: [...want.nameConstraints.permittedDns],
                  permittedUri: [...want.nameConstraints.permittedUri],
                },
          ),
      ],
      ['ocspNoCheck', got.ocspNoCheck === want.ocspNoCheck],
    ];
    const differ = fields.filter(([, ok]) => !ok).map(([f]) => f);
    return differ.length === 0 ? null : `the encoded ${differ.join(', ')} differ from the draft`;
  },
};

/** Every byte-level lint, run on every TBSCertificate before it is signed. */
export const TBS_LINTS: readonly TbsLint[] = [
  tbsIsDer,
  tbsVersionIsV3,
  tbsSignatureAlgorithmMatchesIssuerKey,
  tbsExtensionsUnique,
  tbsExtensionCriticality,
  tbsHoldsOnlyProfileFields,
  tbsMatchesDraft,
];
