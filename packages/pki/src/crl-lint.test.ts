import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Time } from '@peculiar/asn1-x509';
import { signatureAlgorithmByOid } from './algorithms.js';
import { buildCrl, type CrlEntry, type CrlInput } from './crl.js';
import { lintCrl } from './crl-lint.js';
import { CRL_LINTS, type CrlLintContext } from './lints/crl.js';
import { HOUR, at, makeIntermediate, makeRoot, type TestCa } from './test-fixtures.js';
import { editCrl } from './test-mutations.js';

const URL = 'http://status.test/crl';
let int: TestCa;
let other: TestCa;

before(() => {
  const root = makeRoot();
  int = makeIntermediate(root);
  other = makeIntermediate(root);
});

const ENTRIES: CrlEntry[] = [
  { serial: '0a1b2c3d4e5f60718293a4b5c6d7e8f9', revokedAt: at(-HOUR), reason: 'keyCompromise' },
  { serial: '7f', revokedAt: at(-HOUR / 2), reason: 'unspecified' },
];

function input(patch: Partial<CrlInput> = {}, ca: TestCa = int): CrlInput {
  return {
    issuer: { subjectDer: ca.cert.subjectDer, subjectKeyIdentifier: ca.info.subjectKeyIdentifier, signer: ca.signer },
    number: 7n,
    thisUpdate: at(0),
    nextUpdate: at(24 * HOUR),
    distributionPoint: URL,
    entries: ENTRIES,
    ...patch,
  };
}

function ctx(patch: Partial<CrlLintContext> = {}): CrlLintContext {
  return {
    issuer: {
      subjectDer: int.cert.subjectDer,
      subjectKeyIdentifier: int.info.subjectKeyIdentifier,
      algorithm: int.signer.algorithm,
    },
    previousNumber: 6n,
    distributionPoints: [URL],
    validityMs: 24 * HOUR,
    now: at(1000),
    ...patch,
  };
}

interface Breakage {
  lint: string;
  what: string;
  der: () => Uint8Array;
  ctx?: Partial<CrlLintContext>;
  reason: RegExp;
}

const CRL_NUMBER = '2.5.29.20';
const IDP = '2.5.29.28';

const BREAKAGES: Breakage[] = [
  {
    lint: 'crl_parses',
    what: 'bytes that are no CRL',
    der: () => buildCrl(input()).subarray(0, 30),
    reason: /does not parse/,
  },
  {
    lint: 'crl_number_present',
    what: 'a CRL without CRLNumber',
    der: () =>
      editCrl(
        buildCrl(input()),
        int.signer,
        (t) => void (t.crlExtensions = t.crlExtensions!.filter((e) => e.extnID !== CRL_NUMBER)),
      ),
    reason: /no CRLNumber/,
  },
  {
    lint: 'crl_number_grows',
    what: 'the number last published, again',
    der: () => buildCrl(input()),
    ctx: { previousNumber: 7n },
    reason: /CRLNumber 7 does not exceed the last published 7/,
  },
  {
    lint: 'crl_authority_key_identifier_matches_issuer',
    what: "another key's identifier",
    der: () =>
      buildCrl(input({ issuer: { ...input().issuer, subjectKeyIdentifier: other.info.subjectKeyIdentifier } })),
    reason: /not the issuer's SKI/,
  },
  {
    lint: 'crl_issuer_matches_issuer',
    what: 'another issuer name',
    der: () => buildCrl(input({ issuer: { ...input().issuer, subjectDer: other.cert.issuerDer } })),
    reason: /not the issuer's subject name/,
  },
  {
    lint: 'crl_issuing_distribution_point_matches',
    what: 'an IDP naming another URL',
    der: () => buildCrl(input({ distributionPoint: 'http://elsewhere.test/crl' })),
    reason: /names \[http:\/\/elsewhere\.test\/crl\], not \[http:\/\/status\.test\/crl\]/,
  },
  {
    lint: 'crl_issuing_distribution_point_matches',
    what: 'an IDP that is not critical',
    der: () =>
      editCrl(
        buildCrl(input()),
        int.signer,
        (t) => void (t.crlExtensions!.find((e) => e.extnID === IDP)!.critical = false),
      ),
    reason: /not critical/,
  },
  {
    lint: 'crl_issuing_distribution_point_matches',
    what: 'no IDP where the leaves point',
    der: () => buildCrl(input({ distributionPoint: null })),
    reason: /no Issuing Distribution Point/,
  },
  {
    lint: 'crl_next_update_after_this_update',
    what: 'nextUpdate equal to thisUpdate',
    der: () => editCrl(buildCrl(input()), int.signer, (t) => void (t.nextUpdate = new Time(at(0)))),
    reason: /nextUpdate is not after thisUpdate/,
  },
  {
    lint: 'crl_this_update_not_in_future',
    what: 'a thisUpdate after now',
    der: () => buildCrl(input()),
    ctx: { now: at(-1000) },
    reason: /is after now/,
  },
  {
    lint: 'crl_validity_within_configured',
    what: 'a CRL valid longer than configured',
    der: () => buildCrl(input()),
    ctx: { validityMs: 12 * HOUR },
    reason: /more than the configured 43200000 ms/,
  },
  {
    lint: 'crl_serials_unique',
    what: 'a serial listed twice',
    der: () => buildCrl(input({ entries: [...ENTRIES, { ...ENTRIES[0]!, revokedAt: at(-1000) }] })),
    reason: /serial a1b2c3d4e5f60718293a4b5c6d7e8f9 is listed twice/,
  },
  {
    lint: 'crl_signature_algorithm_matches_issuer_key',
    what: 'an issuer key of another algorithm',
    der: () => buildCrl(input()),
    ctx: { issuer: { ...ctx().issuer, algorithm: signatureAlgorithmByOid('1.2.840.10045.4.3.3') } },
    reason: /not ecdsa-with-SHA384/,
  },
];

describe('lintCrl', () => {
  it('passes the CRLs buildCrl writes: with entries, without, with several URLs, and a root’s without IDP', () => {
    assert.deepEqual(lintCrl(buildCrl(input()), ctx()), []);
    assert.deepEqual(lintCrl(buildCrl(input({ entries: [] })), ctx()), []);
    assert.deepEqual(
      lintCrl(
        buildCrl(input({ distributionPoint: [URL, 'http://status.test/crl/primary'] })),
        ctx({ distributionPoints: [URL, 'http://status.test/crl/primary'] }),
      ),
      [],
    );
    assert.deepEqual(lintCrl(buildCrl(input({ distributionPoint: null })), ctx({ distributionPoints: null })), []);
    assert.deepEqual(
      lintCrl(buildCrl(input()), ctx({ previousNumber: null })),
      [],
      'the first CRL has nothing to grow from',
    );
  });

  it('has a breaking case for every CRL lint', () => {
    const names = ['crl_parses', ...CRL_LINTS.map((l) => l.name)];
    assert.equal(new Set(names).size, names.length);
    assert.deepEqual([...new Set(BREAKAGES.map((b) => b.lint))].sort(), [...names].sort());
  });

  for (const b of BREAKAGES) {
    it(`${b.lint}: refuses ${b.what}`, () => {
      const failures = lintCrl(b.der(), ctx(b.ctx));
      assert.equal(failures.length, 1, `exactly one lint should fail: ${JSON.stringify(failures)}`);
      assert.ok(failures[0]!.startsWith(`${b.lint}: `), failures[0]);
      assert.match(failures[0]!, b.reason);
    });
  }
});
