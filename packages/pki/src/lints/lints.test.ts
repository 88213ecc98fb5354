import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSigner, generateKeyPair, keyIdentifier } from '../crypto.js';
import { OID, type CertificateDraft } from '../draft.js';
import { encodeName } from '../encode.js';
import { PkiError } from '../errors.js';
import { parseName } from '../names.js';
import { intermediateDraft, ocspSignerDraft, rootDraft } from '../profiles.js';
import { newSerial } from '../serial.js';
import { DAY, HOUR, at, leafFor, makeIntermediate, makeRoot, random, type TestCa } from '../test-fixtures.js';
import { LINTS, assertLintClean, lintDraft, type LintContext } from './index.js';

type Ctx = Omit<LintContext, 'rules'>;
interface Case {
  draft: CertificateDraft;
  ctx: Ctx;
}

let root: TestCa;
let int: TestCa;
let intC: TestCa;
let leafEc: Case;
let leafRsa: Case;
let leafConstrained: Case;
let intermediate: Case;
let rootCase: Case;
let ocspSigner: Case;

const NAMES = ['a.example', '10.0.0.1', 'spiffe://example.org/x'];

before(() => {
  root = makeRoot();
  int = makeIntermediate(root);
  intC = makeIntermediate(root, { permitDns: ['.internal.example'], permitUri: ['example.org'] });
  leafEc = leafFor(int, NAMES);
  leafRsa = leafFor(int, NAMES, { keyType: 'RSA' });
  leafConstrained = leafFor(intC, ['a.internal.example', 'spiffe://example.org/x']);
  const signer = createSigner(generateKeyPair('EC-P256').privateKey);
  const ca = {
    subjectDer: encodeName({ commonName: 'Lint CA' }),
    commonName: 'Lint CA',
    publicKey: signer.publicKey,
    notBefore: at(-HOUR),
    notAfter: at(30 * DAY),
  };
  intermediate = {
    draft: intermediateDraft({
      ...ca,
      serial: newSerial(random).bytes,
      issuer: root.info,
      permitDns: ['.internal.example'],
      permitUri: [],
    }),
    ctx: { issuer: root.info },
  };
  rootCase = { draft: rootDraft({ ...ca, serial: newSerial(random).bytes }), ctx: { issuer: null } };
  // As the authority issues it: no credential, so no authorised names to check.
  ocspSigner = {
    draft: ocspSignerDraft({
      ...ca,
      subjectDer: encodeName({ commonName: 'OCSP' }),
      commonName: 'OCSP',
      serial: newSerial(random).bytes,
      issuer: int.info,
      notBefore: at(-HOUR),
      notAfter: at(DAY),
    }),
    ctx: { issuer: int.info },
  };
});

const bytes = (n: number, first: number): Uint8Array => {
  const out = new Uint8Array(n).fill(0x42);
  out[0] = first;
  return out;
};
const later = (d: Date, ms: number): Date => new Date(d.getTime() + ms);

interface Breakage {
  lint: string;
  what: string;
  base: () => Case;
  /** Returns the broken draft and context; only the property under test may differ. */
  broken: (c: Case) => Case;
  reason: RegExp;
}

const leaf = () => leafEc;
const patched = (c: Case, patch: Partial<CertificateDraft>, ctx: Partial<Ctx> = {}): Case => ({
  draft: { ...c.draft, ...patch },
  ctx: { ...c.ctx, ...ctx },
});

const BREAKAGES: Breakage[] = [
  {
    lint: 'serial_positive_and_short',
    what: 'a serial of 21 octets',
    base: leaf,
    broken: (c) => patched(c, { serial: bytes(21, 0x01) }),
    reason: /serial is 21 octets/,
  },
  {
    lint: 'serial_positive_and_short',
    what: 'a serial with the top bit set',
    base: leaf,
    broken: (c) => patched(c, { serial: bytes(16, 0x80) }),
    reason: /negative/,
  },
  {
    lint: 'serial_positive_and_short',
    what: 'a serial with a redundant leading zero',
    base: leaf,
    broken: (c) => patched(c, { serial: bytes(16, 0x00) }),
    reason: /not minimally encoded/,
  },
  {
    lint: 'serial_has_entropy',
    what: 'a serial of 4 octets',
    base: leaf,
    broken: (c) => patched(c, { serial: Uint8Array.of(1, 2, 3, 4) }),
    reason: /shorter than 64 bits/,
  },
  {
    lint: 'validity_ordered',
    what: 'notAfter equal to notBefore',
    base: leaf,
    broken: (c) => patched(c, { notAfter: c.draft.notBefore }),
    reason: /notAfter is not after notBefore/,
  },
  {
    lint: 'validity_within_issuer',
    what: "notAfter past the issuer's",
    base: leaf,
    broken: (c) => patched(c, { notAfter: later(int.cert.notAfter, 1000), notBefore: later(int.cert.notAfter, -HOUR) }),
    reason: /is past the issuer's/,
  },
  {
    lint: 'validity_within_issuer',
    what: "notBefore before the issuer's",
    base: leaf,
    broken: (c) =>
      patched(c, { notBefore: later(int.cert.notBefore, -1000), notAfter: later(int.cert.notBefore, HOUR) }),
    reason: /is before the issuer's/,
  },
  {
    lint: 'validity_within_profile',
    what: 'a root-delegated OCSP signer (nocheck, unrevocable) living 400 days',
    base: () => ({
      draft: ocspSignerDraft({
        subjectDer: encodeName({ commonName: 'Root OCSP' }),
        commonName: 'Root OCSP',
        serial: newSerial(random).bytes,
        publicKey: ocspSigner.draft.publicKey,
        issuer: root.info,
        notBefore: at(-HOUR),
        notAfter: at(90 * DAY),
      }),
      ctx: { issuer: root.info },
    }),
    broken: (c) => patched(c, { notAfter: at(400 * DAY) }),
    reason: /an ocsp-signer certificate may live at most 366 days, not 400/,
  },
  {
    lint: 'revocation_pointers_present',
    what: 'an intermediate whose caIssuers URL is https',
    base: () => intermediate,
    broken: (c) =>
      patched(c, { caIssuersUrls: ['https://status.test/root.crt'], crlUrls: ['http://status.test/root.crl'] }),
    reason: /must be plain http:\/\//,
  },
  {
    lint: 'validity_within_policy',
    what: 'a lifetime over maxLifetimeMs',
    base: leaf,
    broken: (c) => patched(c, {}, { maxLifetimeMs: HOUR }),
    reason: /exceeds the policy maximum 3600000 ms/,
  },
  // The policy allows the one-minute backdate on top of the maximum, and not a second more.
  {
    lint: 'validity_within_policy',
    what: 'one second past maximum + backdate',
    base: leaf,
    broken: (c) => patched(c, { notAfter: later(c.draft.notAfter, 1000) }),
    reason: /lifetime 86461000 ms/,
  },
  {
    lint: 'validity_whole_seconds',
    what: 'milliseconds in notBefore',
    base: leaf,
    broken: (c) => patched(c, { notBefore: later(c.draft.notBefore, 500) }),
    reason: /milliseconds/,
  },
  {
    lint: 'validity_whole_seconds',
    what: 'milliseconds in notAfter',
    base: leaf,
    broken: (c) => patched(c, { notAfter: later(c.draft.notAfter, -1) }),
    reason: /milliseconds/,
  },
  {
    lint: 'basic_constraints_match_profile',
    what: 'a leaf with cA true',
    base: leaf,
    broken: (c) => patched(c, { basicConstraints: { ca: true } }),
    reason: /cA is true, the leaf profile needs false/,
  },
  {
    lint: 'basic_constraints_match_profile',
    what: 'an intermediate without pathLen 0',
    base: () => intermediate,
    broken: (c) => patched(c, { basicConstraints: { ca: true } }),
    reason: /pathLenConstraint is undefined, the profile needs 0/,
  },
  {
    lint: 'basic_constraints_match_profile',
    what: 'a root with a pathLen',
    base: () => rootCase,
    broken: (c) => patched(c, { basicConstraints: { ca: true, pathLen: 1 } }),
    reason: /pathLenConstraint is 1/,
  },
  {
    lint: 'key_usage_matches_profile',
    what: 'keyEncipherment on an EC key',
    base: leaf,
    broken: (c) => patched(c, { keyUsage: ['digitalSignature', 'keyEncipherment'] }),
    reason: /KeyUsage is \[digitalSignature, keyEncipherment\], the leaf profile needs \[digitalSignature\]/,
  },
  {
    lint: 'key_usage_matches_profile',
    what: 'an RSA leaf without keyEncipherment',
    base: () => leafRsa,
    broken: (c) => patched(c, { keyUsage: ['digitalSignature'] }),
    reason: /needs \[digitalSignature, keyEncipherment\]/,
  },
  {
    lint: 'key_usage_matches_profile',
    what: 'an intermediate without cRLSign',
    base: () => intermediate,
    broken: (c) => patched(c, { keyUsage: ['keyCertSign'] }),
    reason: /needs \[keyCertSign, cRLSign\]/,
  },
  {
    lint: 'ext_key_usage_within_profile',
    what: 'a leaf with OCSPSigning beside clientAuth',
    base: leaf,
    broken: (c) => patched(c, { extKeyUsage: [OID.clientAuth, OID.ocspSigning] }),
    reason: /ExtendedKeyUsage 1\.3\.6\.1\.5\.5\.7\.3\.9 is never allowed on a leaf/,
  },
  {
    lint: 'ext_key_usage_within_profile',
    what: 'a leaf with anyExtendedKeyUsage',
    base: leaf,
    broken: (c) => patched(c, { extKeyUsage: [OID.serverAuth, '2.5.29.37.0'] }),
    reason: /ExtendedKeyUsage 2\.5\.29\.37\.0 is never allowed on a leaf/,
  },
  {
    lint: 'ext_key_usage_within_profile',
    what: 'a leaf EKU outside the leaf table',
    base: leaf,
    broken: (c) => patched(c, { extKeyUsage: [OID.serverAuth, '1.3.6.1.5.5.7.3.17'] }),
    reason: /1\.3\.6\.1\.5\.5\.7\.3\.17 is not in the leaf profile's table/,
  },
  {
    lint: 'ext_key_usage_within_profile',
    what: 'a leaf without any EKU',
    base: leaf,
    broken: (c) => patched(c, { extKeyUsage: [] }),
    reason: /a leaf needs at least one ExtendedKeyUsage/,
  },
  {
    lint: 'ext_key_usage_within_profile',
    what: 'a leaf EKU listed twice',
    base: leaf,
    broken: (c) => patched(c, { extKeyUsage: [OID.serverAuth, OID.serverAuth] }),
    reason: /appears twice/,
  },
  {
    lint: 'ext_key_usage_within_profile',
    what: 'an EKU on an intermediate',
    base: () => intermediate,
    broken: (c) => patched(c, { extKeyUsage: [OID.serverAuth] }),
    reason: /differs from the profile's/,
  },
  {
    lint: 'subject_key_identifier_present',
    what: 'an SKI of 19 bytes',
    base: leaf,
    broken: (c) => patched(c, { subjectKeyIdentifier: c.draft.subjectKeyIdentifier.subarray(1) }),
    reason: /not 20 bytes/,
  },
  {
    lint: 'authority_key_identifier_matches_issuer',
    what: "an AKI that is not the issuer's SKI",
    base: leaf,
    broken: (c) => patched(c, { authorityKeyIdentifier: root.cert.subjectKeyIdentifier }),
    reason: /not the issuer's SKI/,
  },
  {
    lint: 'authority_key_identifier_matches_issuer',
    what: 'a missing AKI',
    base: leaf,
    broken: (c) => patched(c, { authorityKeyIdentifier: null }),
    reason: /AuthorityKeyIdentifier is missing/,
  },
  {
    lint: 'authority_key_identifier_matches_issuer',
    what: 'a root AKI naming another key',
    base: () => rootCase,
    broken: (c) => patched(c, { authorityKeyIdentifier: new Uint8Array(20) }),
    reason: /root AKI must equal its own SKI/,
  },
  {
    lint: 'revocation_pointers_present',
    what: 'a missing OCSP URL',
    base: leaf,
    broken: (c) => patched(c, { ocspUrls: [] }),
    reason: /AIA \(OCSP, caIssuers\) and CRL distribution point are all required/,
  },
  {
    lint: 'revocation_pointers_present',
    what: 'a missing CRL URL',
    base: leaf,
    broken: (c) => patched(c, { crlUrls: [] }),
    reason: /all required/,
  },
  {
    lint: 'revocation_pointers_present',
    what: 'an https:// CRL URL',
    base: leaf,
    broken: (c) => patched(c, { crlUrls: ['https://status.test/crl'] }),
    reason: /https:\/\/status\.test\/crl must be plain http:\/\//,
  },
  {
    lint: 'name_constraints_only_on_ca',
    what: 'name constraints on a leaf',
    base: leaf,
    broken: (c) => patched(c, { nameConstraints: { permittedDns: ['.example'], permittedUri: [] } }),
    reason: /non-CA/,
  },
  {
    lint: 'key_is_not_issuer_key',
    what: "a leaf with its issuer's key",
    base: leaf,
    broken: (c) =>
      patched(c, { publicKey: int.signer.publicKey, subjectKeyIdentifier: keyIdentifier(int.signer.publicKey.spki) }),
    reason: /the certificate's key is its issuer's key/,
  },
  {
    lint: 'key_is_not_issuer_key',
    what: "an intermediate with the root's key",
    base: () => intermediate,
    broken: (c) =>
      patched(c, { publicKey: root.signer.publicKey, subjectKeyIdentifier: keyIdentifier(root.signer.publicKey.spki) }),
    reason: /issuer's key/,
  },
  {
    lint: 'ocsp_no_check_only_on_ocsp_signers',
    what: 'id-pkix-ocsp-nocheck on a leaf',
    base: leaf,
    broken: (c) => patched(c, { ocspNoCheck: true }),
    reason: /id-pkix-ocsp-nocheck on a leaf certificate; only OCSP signers carry it/,
  },
  {
    lint: 'ocsp_no_check_only_on_ocsp_signers',
    what: 'an OCSP signer without id-pkix-ocsp-nocheck',
    base: () => ocspSigner,
    broken: (c) => patched(c, { ocspNoCheck: false }),
    reason: /the ocsp-signer profile needs id-pkix-ocsp-nocheck/,
  },
  {
    lint: 'ext_key_usage_within_profile',
    what: 'an OCSP signer with serverAuth',
    base: () => ocspSigner,
    broken: (c) => patched(c, { extKeyUsage: [OID.ocspSigning, OID.serverAuth] }),
    reason: /differs from the profile's/,
  },
  {
    lint: 'key_usage_matches_profile',
    what: 'an OCSP signer with keyCertSign',
    base: () => ocspSigner,
    broken: (c) => patched(c, { keyUsage: ['digitalSignature', 'keyCertSign'] }),
    reason: /the ocsp-signer profile needs \[digitalSignature\]/,
  },
  {
    lint: 'basic_constraints_match_profile',
    what: 'an OCSP signer with cA true',
    base: () => ocspSigner,
    broken: (c) => patched(c, { basicConstraints: { ca: true } }),
    reason: /the ocsp-signer profile needs false/,
  },
  {
    lint: 'subject_alt_name_present',
    what: 'an empty SAN',
    base: leaf,
    broken: (c) => patched(c, { subjectAltNames: [], commonName: null }),
    reason: /at least one subject alternative name/,
  },
  {
    lint: 'names_authorized',
    what: 'a SAN name the credential did not authorise',
    base: leaf,
    broken: (c) => patched(c, {}, { authorizedNames: c.draft.subjectAltNames.slice(0, 2) }),
    reason: /uri:spiffe:\/\/example\.org\/x was not authorised/,
  },
  {
    lint: 'names_authorized',
    what: 'a CN that is not among the SANs',
    base: leaf,
    broken: (c) => patched(c, { commonName: 'b.example' }),
    reason: /common name b\.example is not one of the DNS subject alternative names/,
  },
  {
    lint: 'names_authorized',
    what: 'a CN that is an IP address SAN, not a DNS one',
    base: leaf,
    broken: (c) =>
      patched(
        c,
        { commonName: '10.9.9.9', subjectAltNames: [...c.draft.subjectAltNames, { kind: 'ip', value: '10.9.9.9' }] },
        { authorizedNames: [...c.draft.subjectAltNames, { kind: 'ip', value: '10.9.9.9' }] },
      ),
    reason: /common name 10\.9\.9\.9 is not one of the DNS subject alternative names/,
  },
  {
    lint: 'names_authorized',
    what: 'a leaf linted without authorised names',
    base: leaf,
    broken: (c) => ({ draft: c.draft, ctx: { issuer: c.ctx.issuer, maxLifetimeMs: c.ctx.maxLifetimeMs } }),
    reason: /no authorised names/,
  },
  {
    lint: 'subject_alt_names_unique',
    what: 'a duplicate SAN',
    base: leaf,
    broken: (c) => patched(c, { subjectAltNames: [...c.draft.subjectAltNames, parseName('A.example.')] }),
    reason: /appears twice/,
  },
  {
    lint: 'names_within_issuer_constraints',
    what: 'a DNS name outside the issuer constraints',
    base: () => leafConstrained,
    broken: (c) =>
      patched(
        c,
        { subjectAltNames: [...c.draft.subjectAltNames, parseName('a.example')] },
        { authorizedNames: [...c.draft.subjectAltNames, parseName('a.example')] },
      ),
    reason: /dns:a\.example is outside the issuer's name constraints/,
  },
  {
    lint: 'names_within_issuer_constraints',
    what: 'the constrained domain itself under a leading-dot constraint',
    base: () => leafConstrained,
    broken: (c) =>
      patched(
        c,
        { subjectAltNames: [parseName('internal.example')], commonName: null },
        { authorizedNames: [parseName('internal.example')] },
      ),
    reason: /dns:internal\.example is outside/,
  },
  {
    // RFC 5280 §4.2.1.10: a URI constraint without a leading period "specifies a host".
    lint: 'names_within_issuer_constraints',
    what: 'a URI whose host is a subdomain of a host-only URI constraint',
    base: () => leafConstrained,
    broken: (c) =>
      patched(
        c,
        { subjectAltNames: [parseName('spiffe://sub.example.org/x')], commonName: null },
        { authorizedNames: [parseName('spiffe://sub.example.org/x')] },
      ),
    reason: /uri:spiffe:\/\/sub\.example\.org\/x is outside/,
  },
];

describe('lintDraft', () => {
  it('passes the unbroken leaf, RSA leaf, constrained leaf, intermediate, root and OCSP signer drafts', () => {
    for (const c of [leafEc, leafRsa, leafConstrained, intermediate, rootCase, ocspSigner]) {
      assert.deepEqual(lintDraft(c.draft, c.ctx), [], c.draft.profile);
    }
  });

  it('passes a leaf whose EKU is any non-empty subset of the leaf table (a template chose it)', () => {
    for (const eku of [
      [OID.clientAuth],
      [OID.serverAuth],
      [OID.clientAuth, '1.3.6.1.5.5.7.3.3', '1.3.6.1.5.5.7.3.4', '1.3.6.1.5.5.7.3.8'],
    ]) {
      assert.deepEqual(lintDraft({ ...leafEc.draft, extKeyUsage: eku }, leafEc.ctx), [], eku.join(','));
    }
  });

  it('asks no names of an OCSP signer: none authorised, or an empty list, both pass', () => {
    assert.deepEqual(lintDraft(ocspSigner.draft, { ...ocspSigner.ctx, authorizedNames: [] }), []);
    // The CN-among-SANs rule is for leaves: an OCSP signer has a CN and no SAN.
    assert.equal(ocspSigner.draft.commonName, 'OCSP');
    assert.deepEqual(ocspSigner.draft.subjectAltNames, []);
  });

  it('has a breaking case for every lint in LINTS', () => {
    const names = LINTS.map((l) => l.name);
    assert.equal(new Set(names).size, names.length, 'lint names are unique');
    assert.deepEqual([...new Set(BREAKAGES.map((b) => b.lint))].sort(), [...names].sort());
  });

  for (const b of BREAKAGES) {
    it(`${b.lint}: refuses ${b.what}`, () => {
      const base = b.base();
      assert.deepEqual(lintDraft(base.draft, base.ctx), [], 'the unbroken draft is clean');
      const broken = b.broken(base);
      const failures = lintDraft(broken.draft, broken.ctx);
      assert.equal(failures.length, 1, `exactly one lint should fail: ${JSON.stringify(failures)}`);
      assert.ok(failures[0]!.startsWith(`${b.lint}: `), failures[0]);
      assert.match(failures[0]!, b.reason);
    });
  }

  it('accepts the serial boundaries: 20 octets with a needed leading zero, and 8 octets', () => {
    const twenty = bytes(20, 0x00);
    twenty[1] = 0x80;
    assert.deepEqual(lintDraft({ ...leafEc.draft, serial: twenty }, leafEc.ctx), []);
    assert.deepEqual(lintDraft({ ...leafEc.draft, serial: bytes(8, 0x01) }, leafEc.ctx), []);
  });
});

describe('assertLintClean', () => {
  it('throws lintFailed naming every failed lint', () => {
    const draft = { ...leafEc.draft, serial: Uint8Array.of(1), ocspUrls: [] };
    assert.throws(
      () => assertLintClean(draft, leafEc.ctx),
      (err: unknown) => {
        assert.ok(err instanceof PkiError);
        assert.equal(err.code, 'lintFailed');
        assert.match(err.message, /^certificate failed lint: serial_has_entropy: .*; revocation_pointers_present: /);
        return true;
      },
    );
  });

  it('returns quietly for a clean draft', () => {
    assert.doesNotThrow(() => assertLintClean(leafEc.draft, leafEc.ctx));
  });
});
