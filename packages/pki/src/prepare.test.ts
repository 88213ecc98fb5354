import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { OctetString } from '@peculiar/asn1-schema';
import { Extension } from '@peculiar/asn1-x509';
import { signatureAlgorithmByOid } from './algorithms.js';
import type { CertificateDraft } from './draft.js';
import { splitSigned } from './der.js';
import { encodeName, encodeTbs } from './encode.js';
import { PkiError } from './errors.js';
import type { LintContext } from './lints/lint.js';
import { TBS_LINTS } from './lints/tbs.js';
import { lintTbs, prepareCertificate, signPrepared } from './prepare.js';
import { leafFor, makeIntermediate, makeOcspSigner, makeRoot, type TestCa } from './test-fixtures.js';
import { editTbsCertificate, mutate, mutationsArb } from './test-mutations.js';

type Ctx = Omit<LintContext, 'rules'>;
interface Case {
  draft: CertificateDraft;
  ctx: Ctx;
}

let root: TestCa;
let int: TestCa;
let leaf: Case;

before(() => {
  root = makeRoot();
  int = makeIntermediate(root);
  leaf = leafFor(int, ['a.example', '10.0.0.1', 'spiffe://example.org/x']);
});

const encoded = (c: Case): Uint8Array => encodeTbs(c.draft, int.signer.algorithm);
const failuresOf = (tbs: Uint8Array, c: Case = leaf): string[] =>
  lintTbs(tbs, c.draft, int.signer.algorithm, c.ctx).failures;

describe('prepareCertificate', () => {
  it('signs exactly the bytes it prepared, for every profile and key type', () => {
    const int2 = makeIntermediate(root, { permitDns: ['.internal.example'] });
    const cases: Array<{ c: Case; ca: TestCa }> = [
      { c: leaf, ca: int },
      { c: leafFor(int, ['b.example'], { keyType: 'RSA' }), ca: int },
      { c: leafFor(int, ['c.example'], { keyType: 'Ed25519' }), ca: int },
      { c: leafFor(int2, ['a.internal.example']), ca: int2 },
      // No CN: an empty subject (SAN critical, RFC 5280 §4.2.1.6), and an organization without a CN.
      { c: leafFor(int, ['10.0.0.9'], { commonName: null }), ca: int },
      {
        c: ((l) => ({ ...l, draft: { ...l.draft, subjectDer: encodeName({ organization: 'Ops' }) } }))(
          leafFor(int, ['10.0.0.9'], { commonName: null }),
        ),
        ca: int,
      },
    ];
    for (const { c, ca } of cases) {
      const prepared = prepareCertificate(c.draft, ca.signer, c.ctx);
      const der = signPrepared(prepared, ca.signer);
      assert.ok(Buffer.from(splitSigned(der).tbs).equals(prepared.tbs), c.draft.profile);
    }
    // The CA profiles pass through the same path in makeRoot/makeIntermediate/makeOcspSigner (lintAndSign).
    assert.equal(makeOcspSigner(int).cert.serial.length > 0, true);
  });

  it('lints what was parsed back: a draft fault is reported by its lint, and nothing is returned', () => {
    const bad = { ...leaf.draft, ocspUrls: [] };
    assert.throws(
      () => prepareCertificate(bad, int.signer, leaf.ctx),
      (err: unknown) => {
        assert.ok(err instanceof PkiError);
        assert.equal(err.code, 'lintFailed');
        assert.match(err.message, /^certificate failed lint: revocation_pointers_present: /);
        return true;
      },
    );
  });
});

interface Breakage {
  lint: string;
  what: string;
  /** Stands in for an encoder that went wrong: the bytes it would have produced. */
  tbs: () => Uint8Array;
  reason: RegExp;
}

const ski = '2.5.29.14';
const bc = '2.5.29.19';

const BREAKAGES: Breakage[] = [
  {
    lint: 'tbs_parses',
    what: 'bytes that are no TBSCertificate',
    tbs: () => encoded(leaf).subarray(0, 40),
    reason: /does not parse/,
  },
  {
    lint: 'tbs_is_der',
    what: 'the outer length in a non-minimal long form',
    tbs: () => {
      const t = encoded(leaf);
      assert.equal(t[1], 0x82);
      return Uint8Array.from([0x30, 0x83, 0x00, ...t.subarray(2)]);
    },
    reason: /not in DER/,
  },
  {
    lint: 'tbs_version_is_v3',
    what: 'version v2',
    tbs: () => editTbsCertificate(encoded(leaf), (t) => void (t.version = 1)),
    reason: /version field is 1/,
  },
  {
    lint: 'tbs_signature_algorithm_matches_issuer_key',
    what: 'ecdsa-with-SHA384 named for a P-256 issuer',
    tbs: () => encodeTbs(leaf.draft, signatureAlgorithmByOid('1.2.840.10045.4.3.3')),
    reason: /is not ecdsa-with-SHA256/,
  },
  {
    lint: 'tbs_extensions_unique',
    what: 'the SubjectKeyIdentifier twice',
    tbs: () =>
      editTbsCertificate(encoded(leaf), (t) => void t.extensions!.push(t.extensions!.find((e) => e.extnID === ski)!)),
    reason: /extension 2\.5\.29\.14 appears twice/,
  },
  {
    lint: 'tbs_extension_criticality',
    what: 'BasicConstraints not critical',
    tbs: () =>
      editTbsCertificate(encoded(leaf), (t) => void (t.extensions!.find((e) => e.extnID === bc)!.critical = false)),
    reason: /extension 2\.5\.29\.19 is not critical/,
  },
  {
    lint: 'tbs_holds_only_profile_fields',
    what: 'an extension no profile writes',
    tbs: () =>
      editTbsCertificate(
        encoded(leaf),
        (t) =>
          void t.extensions!.push(
            new Extension({
              extnID: '1.3.6.1.4.1.99999.1',
              critical: false,
              extnValue: new OctetString(new Uint8Array([5, 0])),
            }),
          ),
      ),
    reason: /extension 1\.3\.6\.1\.4\.1\.99999\.1/,
  },
  {
    lint: 'tbs_matches_draft',
    what: 'a SubjectKeyIdentifier other than the draft’s',
    tbs: () =>
      editTbsCertificate(encoded(leaf), (t) => {
        const e = t.extensions!.find((x) => x.extnID === ski)!;
        const v = new Uint8Array(e.extnValue.buffer.slice(0));
        v[v.length - 1]! ^= 1;
        e.extnValue = new OctetString(v);
      }),
    reason: /the encoded subjectKeyIdentifier differ from the draft/,
  },
];

describe('lintTbs', () => {
  it('passes the encoder output for the leaf', () => {
    assert.deepEqual(failuresOf(encoded(leaf)), []);
  });

  it('has a breaking case for every byte-level lint', () => {
    const names = ['tbs_parses', ...TBS_LINTS.map((l) => l.name)];
    assert.equal(new Set(names).size, names.length);
    assert.deepEqual([...new Set(BREAKAGES.map((b) => b.lint))].sort(), [...names].sort());
  });

  for (const b of BREAKAGES) {
    it(`${b.lint}: refuses ${b.what}`, () => {
      const failures = failuresOf(b.tbs());
      assert.equal(failures.length, 1, `exactly one lint should fail: ${JSON.stringify(failures)}`);
      assert.ok(failures[0]!.startsWith(`${b.lint}: `), failures[0]);
      assert.match(failures[0]!, b.reason);
    });
  }

  it('reports a corrupted AKI both as an encoder fault and against the issuer', () => {
    const aki = '2.5.29.35';
    const tbs = editTbsCertificate(encoded(leaf), (t) => {
      const e = t.extensions!.find((x) => x.extnID === aki)!;
      const v = new Uint8Array(e.extnValue.buffer.slice(0));
      v[v.length - 1]! ^= 1;
      e.extnValue = new OctetString(v);
    });
    const failures = failuresOf(tbs).map((f) => f.slice(0, f.indexOf(':')));
    assert.deepEqual(failures, ['tbs_matches_draft', 'authority_key_identifier_matches_issuer']);
  });

  it('catches any byte-level corruption of the encoder output before it could be signed', () => {
    const clean = encoded(leaf);
    fc.assert(
      fc.property(mutationsArb, (mutations) => {
        const tbs = mutate(clean, mutations);
        if (Buffer.from(tbs).equals(clean)) return;
        assert.notDeepEqual(failuresOf(tbs), [], `mutations ${JSON.stringify(mutations)} went unnoticed`);
      }),
      { numRuns: 300 },
    );
  });
});
