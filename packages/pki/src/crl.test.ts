import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPair } from './crypto.js';
import { buildCrl, isCrlSignedBy, parseCrl, type CrlEntry, type CrlInput } from './crl.js';
import { readChildren, readTlv } from './der.js';
import { PkiError } from './errors.js';
import { encodePem } from './pem.js';
import { REVOCATION_REASONS, type RevocationReason } from './revocation-reasons.js';
import { newSerial, serialToHex } from './serial.js';
import { lintAndSign } from './sign.js';
import {
  DAY,
  HOUR,
  MINUTE,
  NOW,
  OpenSsl,
  URLS,
  assertPkiError,
  at,
  leafFor,
  makeIntermediate,
  makeRoot,
  opensslHex,
  random,
  type TestCa,
} from './test-fixtures.js';

const openssl = new OpenSsl();
after(() => openssl.remove());

// How `openssl crl -text` names each reason (crypto/x509/v3_enum.c); unspecified is never written.
const OPENSSL_REASON: Record<RevocationReason, string | null> = {
  unspecified: null,
  keyCompromise: 'Key Compromise',
  cACompromise: 'CA Compromise',
  affiliationChanged: 'Affiliation Changed',
  superseded: 'Superseded',
  cessationOfOperation: 'Cessation Of Operation',
  certificateHold: 'Certificate Hold',
  privilegeWithdrawn: 'Privilege Withdrawn',
  aACompromise: 'AA Compromise',
};

let root: TestCa;
let int: TestCa;
/** Same subject name as `int`, different key: only the signature tells them apart. */
let impostor: TestCa;
let intKeyPem: string;
let revokedSerial: string;
let entries: CrlEntry[];
let intCrl: Uint8Array;

const crlInput = (ca: TestCa, patch: Partial<CrlInput> = {}): CrlInput => ({
  issuer: ca.info,
  number: 42n,
  thisUpdate: NOW,
  nextUpdate: at(DAY),
  distributionPoint: URLS.crl,
  entries: [],
  ...patch,
});

/** Writes a CRL as PEM for OpenSSL (and DER beside it). */
function writeCrl(name: string, der: Uint8Array): string {
  openssl.write(`${name}.crl.der`, der);
  return openssl.write(`${name}.crl.pem`, encodePem('X509 CRL', der));
}

const crlText = (name: string): string =>
  openssl.run(['crl', '-inform', 'DER', '-in', `${name}.crl.der`, '-noout', '-text']);
const crlVerifies = (name: string): boolean => {
  const r = openssl.try([
    'crl',
    '-inform',
    'DER',
    '-in',
    `${name}.crl.der`,
    '-CAfile',
    'chain.pem',
    '-verify',
    '-noout',
  ]);
  // OpenSSL 3.0 exits 0 on a bad signature: read its verdict.
  return /verify OK/.test(r.output) && !/verify fail/i.test(r.output);
};

before(() => {
  root = makeRoot();
  const intKey = generateKeyPair('EC-P256').privateKey;
  intKeyPem = intKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  int = makeIntermediate(root, { key: intKey });
  impostor = makeIntermediate(root);
  openssl.write('root.pem', root.pem);
  openssl.write('int.pem', int.pem);
  openssl.write('int.key', intKeyPem);
  openssl.write('chain.pem', root.pem + int.pem);
  const revoked = leafFor(int, ['revoked.example']);
  const good = leafFor(int, ['good.example']);
  openssl.write('revoked.pem', encodePem('CERTIFICATE', lintAndSign(revoked.draft, int.signer, revoked.ctx)));
  openssl.write('good.pem', encodePem('CERTIFICATE', lintAndSign(good.draft, int.signer, good.ctx)));
  revokedSerial = serialToHex(revoked.draft.serial);
  entries = [
    { serial: revokedSerial, revokedAt: at(-HOUR), reason: 'keyCompromise' },
    ...REVOCATION_REASONS.map((reason, i): CrlEntry => ({
      serial: newSerial(random).hex,
      revokedAt: at(-(i + 2) * MINUTE),
      reason,
    })),
    // The top bit set needs a leading zero octet; an odd number of digits a leading zero nibble.
    { serial: `80${'ab'.repeat(15)}`, revokedAt: at(-2 * HOUR), reason: 'superseded' },
    { serial: 'abc', revokedAt: at(-3 * HOUR), reason: 'unspecified' },
    { serial: '7f', revokedAt: at(-4 * HOUR), reason: 'affiliationChanged' },
  ];
  intCrl = buildCrl(crlInput(int, { entries }));
  writeCrl('int', intCrl);
});

/** Each `Serial Number:` block of `openssl crl -text`, as our hex with the reason OpenSSL printed. */
function printedEntries(text: string): Array<{ serial: string; reason: string | null }> {
  return text
    .split('Serial Number: ')
    .slice(1)
    .map((block) => ({
      serial: block
        .slice(0, block.indexOf('\n'))
        .trim()
        .toLowerCase()
        .replace(/^0+(?=.)/, ''),
      reason: /CRL Reason Code:\s*\n\s*(.+)\n/.exec(block)?.[1]?.trim() ?? null,
    }));
}

describe('buildCrl', () => {
  it('makes a CRL that OpenSSL verifies against the intermediate', () => {
    assert.ok(crlVerifies('int'));
    // The check is live: another key with the same name does not verify.
    writeCrl('impostor', buildCrl(crlInput(impostor, { entries })));
    assert.equal(crlVerifies('impostor'), false);
  });

  it('is v2 with the AKI, the CRL number, a critical IDP naming the distribution point, and the update times', () => {
    const t = crlText('int');
    assert.match(t, /Version 2 \(0x1\)/);
    assert.match(t, /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(t, /Issuer: O = Shortleaf Test, CN = Test Intermediate\n/);
    assert.match(t, /Last Update: Jan {2}1 00:00:00 2030 GMT\n/);
    assert.match(t, /Next Update: Jan {2}2 00:00:00 2030 GMT\n/);
    assert.match(
      t,
      new RegExp(`X509v3 Authority Key Identifier: *\\n\\s+${opensslHex(int.cert.subjectKeyIdentifier!)}\\n`),
    );
    assert.match(t, /X509v3 CRL Number: *\n\s+42\n/);
    assert.match(
      t,
      /X509v3 Issuing Distribution Point: critical\n\s+Full Name:\n\s+URI:http:\/\/status\.test:9080\/crl\/int\.crl\n/,
    );
    // No scope flags: OpenSSL would refuse the CRL for the leaves otherwise.
    assert.doesNotMatch(t, /Only (User|CA|Some|Attribute)|Indirect CRL/);
  });

  it('lists every entry with its reason code, and none for unspecified', () => {
    const printed = printedEntries(crlText('int'));
    assert.deepEqual(
      printed,
      entries.map((e) => ({ serial: e.serial, reason: OPENSSL_REASON[e.reason] })),
    );
    const block = crlText('int').split('Serial Number: ')[1]!;
    assert.match(block, /Revocation Date: Dec 31 23:00:00 2029 GMT\n/);
  });

  it('leaves revokedCertificates out entirely when there are no entries (RFC 5280 §5.1.2.6)', () => {
    const der = buildCrl(crlInput(int));
    writeCrl('empty', der);
    assert.match(crlText('empty'), /No Revoked Certificates\./);
    assert.ok(crlVerifies('empty'));
    const tbs = readChildren(der, readTlv(der, 0))[0]!;
    // version, signature, issuer, thisUpdate, nextUpdate, [0] crlExtensions: no empty SEQUENCE between.
    assert.deepEqual(
      readChildren(der, tbs).map((t) => t.tag),
      [0x02, 0x30, 0x30, 0x17, 0x17, 0xa0],
    );
  });

  it('makes openssl verify -crl_check refuse the revoked leaf and accept the other', () => {
    const r = openssl.verify('root.pem', 'int.pem', 'revoked.pem', ['-crl_check', '-CRLfile', 'int.crl.pem']);
    assert.equal(r.ok, false);
    assert.match(r.output, /error 23 at 0 depth lookup: certificate revoked/);
    const g = openssl.verify('root.pem', 'int.pem', 'good.pem', ['-crl_check', '-CRLfile', 'int.crl.pem']);
    assert.ok(g.ok, g.output);
    assert.match(g.output, /good\.pem: OK/);
  });

  it('with a root CRL without an IDP, -crl_check_all checks both links of the chain', () => {
    const rootCrl = buildCrl(crlInput(root, { distributionPoint: null, number: 1n }));
    openssl.write('both.pem', encodePem('X509 CRL', intCrl) + encodePem('X509 CRL', rootCrl));
    const all = ['-crl_check_all', '-CRLfile', 'both.pem'];
    const g = openssl.verify('root.pem', 'int.pem', 'good.pem', all);
    assert.ok(g.ok, g.output);
    assert.match(
      openssl.verify('root.pem', 'int.pem', 'revoked.pem', all).output,
      /error 23 at 0 depth lookup: certificate revoked/,
    );

    // The root revokes the intermediate: now even the good leaf fails, at depth 1.
    const revokingRoot = buildCrl(
      crlInput(root, {
        distributionPoint: null,
        number: 2n,
        entries: [{ serial: int.cert.serial, revokedAt: at(-MINUTE), reason: 'cACompromise' }],
      }),
    );
    openssl.write('both-revoked.pem', encodePem('X509 CRL', intCrl) + encodePem('X509 CRL', revokingRoot));
    const r = openssl.verify('root.pem', 'int.pem', 'good.pem', ['-crl_check_all', '-CRLfile', 'both-revoked.pem']);
    assert.match(r.output, /error 23 at 1 depth lookup: certificate revoked/);

    // Why the root's CRL has no IDP: the intermediate has no CRL distribution point to match it.
    const scoped = buildCrl(crlInput(root, { distributionPoint: 'http://status.test:9080/crl/root.crl', number: 3n }));
    openssl.write('both-scoped.pem', encodePem('X509 CRL', intCrl) + encodePem('X509 CRL', scoped));
    assert.match(
      openssl.verify('root.pem', 'int.pem', 'good.pem', ['-crl_check_all', '-CRLfile', 'both-scoped.pem']).output,
      /different CRL scope/,
    );
  });

  it('writes times from 2050 as GeneralizedTime and drops milliseconds', () => {
    const at2050 = new Date('2050-01-01T00:00:00.999Z');
    const der = buildCrl(
      crlInput(int, {
        thisUpdate: at2050,
        nextUpdate: new Date('2050-01-02T00:00:00Z'),
        entries: [{ serial: 'abc', revokedAt: at2050, reason: 'keyCompromise' }],
      }),
    );
    writeCrl('y2050', der);
    const t = crlText('y2050');
    assert.match(t, /Last Update: Jan {2}1 00:00:00 2050 GMT/);
    assert.match(t, /Revocation Date: Jan {2}1 00:00:00 2050 GMT/);
    const fields = readChildren(der, readChildren(der, readTlv(der, 0))[0]!);
    assert.equal(fields[3]!.tag, 0x18);
    const parsed = parseCrl(der);
    assert.equal(parsed.thisUpdate.toISOString(), '2050-01-01T00:00:00.000Z');
    assert.equal(parsed.entries[0]!.revokedAt.toISOString(), '2050-01-01T00:00:00.000Z');
  });

  it('writes serials as minimal positive INTEGERs whatever their case or leading zeros', () => {
    const der = buildCrl(
      crlInput(int, {
        entries: [
          { serial: '00ABC', revokedAt: NOW, reason: 'unspecified' },
          { serial: '0', revokedAt: NOW, reason: 'unspecified' },
          { serial: '0080', revokedAt: NOW, reason: 'unspecified' },
          { serial: `7f${'ff'.repeat(19)}`, revokedAt: NOW, reason: 'unspecified' },
        ],
      }),
    );
    assert.deepEqual(
      parseCrl(der).entries.map((e) => e.serial),
      ['abc', '0', '80', `7f${'ff'.repeat(19)}`],
    );
    const list = readChildren(der, readChildren(der, readTlv(der, 0))[0]!)[5]!;
    const serialBytes = readChildren(der, list).map((entry) => {
      const s = readChildren(der, entry)[0]!;
      return Buffer.from(der.subarray(s.start, s.end)).toString('hex');
    });
    assert.deepEqual(serialBytes, ['02020abc', '020100', '02020080', `0214${'7f'}${'ff'.repeat(19)}`]);
  });

  it('takes CRL numbers from 0 up to 20 octets', () => {
    assert.equal(parseCrl(buildCrl(crlInput(int, { number: 0n }))).number, 0n);
    const max = 2n ** 159n - 1n;
    const der = buildCrl(crlInput(int, { number: max }));
    writeCrl('bignum', der);
    assert.equal(parseCrl(der).number, max);
    assert.match(crlText('bignum'), /CRL Number: *\n\s+0x7FFF/);
  });

  it('refuses input it cannot encode truthfully', () => {
    const entry = (patch: Partial<CrlEntry>): CrlInput =>
      crlInput(int, { entries: [{ serial: 'abc', revokedAt: NOW, reason: 'keyCompromise', ...patch }] });
    assertPkiError(() => buildCrl(entry({ serial: 'xyz' })), 'badCrl', '"xyz" is not a hexadecimal serial number');
    assertPkiError(() => buildCrl(entry({ serial: '' })), 'badCrl', 'is not a hexadecimal serial number');
    assertPkiError(() => buildCrl(entry({ serial: 'ab:cd' })), 'badCrl', 'is not a hexadecimal serial number');
    assertPkiError(() => buildCrl(entry({ serial: '1'.repeat(41) })), 'badCrl', 'is not a hexadecimal serial number');
    assertPkiError(() => buildCrl(entry({ serial: `80${'00'.repeat(19)}` })), 'badCrl', 'longer than 20 octets');
    assertPkiError(() => buildCrl(entry({ revokedAt: new Date(Number.NaN) })), 'badCrl', 'not a valid date');
    assertPkiError(
      () => buildCrl(entry({ reason: 'removeFromCRL' as RevocationReason })),
      'badRevocationReason',
      /delta CRLs/,
    );
    assertPkiError(
      () => buildCrl(entry({ reason: 'stolen' as RevocationReason })),
      'badRevocationReason',
      '"stolen" is not a revocation reason',
    );
    assertPkiError(() => buildCrl(crlInput(int, { nextUpdate: NOW })), 'badCrl', 'nextUpdate must be after thisUpdate');
    assertPkiError(() => buildCrl(crlInput(int, { number: -1n })), 'badCrl', 'cannot be negative');
    assertPkiError(() => buildCrl(crlInput(int, { number: 2n ** 159n })), 'badCrl', 'longer than 20 octets');
    assertPkiError(
      () => buildCrl(crlInput(int, { distributionPoint: 'http://status.test/a b' })),
      'badCrl',
      'printable ASCII',
    );
  });

  it('streams 100,000 entries from a generator into a CRL OpenSSL reads in full', () => {
    const COUNT = 100_000;
    function* many(): Generator<CrlEntry> {
      for (let i = 0; i < COUNT; i++) {
        yield {
          serial: (0x1000000000000000n + BigInt(i) * 7919n).toString(16),
          revokedAt: at(-i * 1000),
          reason: REVOCATION_REASONS[i % REVOCATION_REASONS.length]!,
        };
      }
    }
    const started = performance.now();
    const der = buildCrl(crlInput(int, { entries: many() }));
    const ms = performance.now() - started;
    // About 0.1 s on a laptop; the bound only catches a return to per-entry objects.
    assert.ok(ms < 5000, `buildCrl took ${Math.round(ms)} ms for ${COUNT} entries`);
    writeCrl('big', der);
    assert.ok(crlVerifies('big'));
    assert.equal(crlText('big').match(/Serial Number: /g)?.length, COUNT);
    const parsed = parseCrl(der);
    assert.equal(parsed.entries.length, COUNT);
    assert.deepEqual(parsed.entries[COUNT - 1], {
      serial: (0x1000000000000000n + BigInt(COUNT - 1) * 7919n).toString(16),
      revokedAt: at(-(COUNT - 1) * 1000),
      reason: REVOCATION_REASONS[(COUNT - 1) % REVOCATION_REASONS.length],
    });
  });
});

/** The CRL with the tag of its signed part (the first thing inside the outer SEQUENCE) replaced. */
function tbsTagChanged(der: Uint8Array, tag: number): Uint8Array {
  const copy = new Uint8Array(der);
  copy[der[1]! & 0x80 ? 2 + (der[1]! & 0x7f) : 2] = tag;
  return copy;
}

describe('parseCrl', () => {
  it('reads back what buildCrl wrote', () => {
    const parsed = parseCrl(intCrl);
    assert.equal(parsed.number, 42n);
    assert.equal(parsed.thisUpdate.getTime(), NOW.getTime());
    assert.equal(parsed.nextUpdate?.getTime(), at(DAY).getTime());
    assert.deepEqual(parsed.authorityKeyIdentifier, int.cert.subjectKeyIdentifier);
    assert.deepEqual(Buffer.from(parsed.issuerDer), Buffer.from(int.cert.subjectDer));
    assert.deepEqual(
      parsed.entries,
      entries.map((e) => ({ ...e, revokedAt: new Date(e.revokedAt.getTime()) })),
    );
    assert.deepEqual(parseCrl(encodePem('X509 CRL', intCrl)).entries, parsed.entries);
  });

  it('reads a CRL made by openssl ca -gencrl', () => {
    openssl.write(
      'ca.cnf',
      [
        '[ca]',
        'default_ca = ca_default',
        '[ca_default]',
        'database = index.txt',
        'crlnumber = crlnumber',
        'default_md = sha256',
        'default_crl_days = 1',
        'crl_extensions = crl_ext',
        '[crl_ext]',
        'authorityKeyIdentifier = keyid:always',
        '',
      ].join('\n'),
    );
    // The first entry also gets an invalidityDate extension: two entry extensions, not our shape.
    openssl.write(
      'index.txt',
      [
        'R\t300102000000Z\t291231000000Z,keyTime,20291230000000Z\t0ABC\tunknown\t/CN=a',
        'R\t300102000000Z\t291231120000Z\t80ABCD\tunknown\t/CN=b',
        'V\t300102000000Z\t\t1234\tunknown\t/CN=c',
        '',
      ].join('\n'),
    );
    openssl.write('crlnumber', '1000\n');
    openssl.run(['ca', '-gencrl', '-config', 'ca.cnf', '-keyfile', 'int.key', '-cert', 'int.pem', '-out', 'gen.crl']);
    assert.match(
      openssl.run(['crl', '-in', 'gen.crl', '-noout', '-text']),
      /Invalidity Date: *\n\s+Dec 30 00:00:00 2029 GMT/,
    );
    const gen = parseCrl(openssl.run(['crl', '-in', 'gen.crl']));
    assert.equal(gen.number, 0x1000n);
    assert.deepEqual(gen.authorityKeyIdentifier, int.cert.subjectKeyIdentifier);
    assert.deepEqual(gen.entries, [
      { serial: 'abc', revokedAt: new Date('2029-12-31T00:00:00Z'), reason: 'keyCompromise' },
      { serial: '80abcd', revokedAt: new Date('2029-12-31T12:00:00Z'), reason: 'unspecified' },
    ]);
    assert.ok(isCrlSignedBy(gen, int.cert));
  });

  it('refuses what is not a CRL with badCrl', () => {
    const cases: Array<[Uint8Array | string, string | RegExp]> = [
      [Uint8Array.of(1, 2, 3), 'the CRL cannot be parsed'],
      [intCrl.subarray(0, intCrl.length - 1), 'truncated'],
      [Uint8Array.from([...intCrl, 0]), 'nothing after it'],
      [root.der, 'no signature algorithm or issuer'],
      [root.pem, /X509 CRL/],
      ['not pem', /no PEM block/],
      [tbsTagChanged(intCrl, 0x31), 'TBSCertList) is not a SEQUENCE'],
    ];
    for (const [input, fragment] of cases) assertPkiError(() => parseCrl(input), 'badCrl', fragment);
  });

  it('refuses unknown critical extensions and out-of-range reason codes', () => {
    // Replace the IDP's OID 2.5.29.28 with 2.5.29.27 (delta CRL indicator), keeping it critical.
    const delta = Buffer.from(intCrl);
    const idp = delta.indexOf(Buffer.from('0603551d1c', 'hex'));
    delta[idp + 4] = 0x1b;
    assertPkiError(() => parseCrl(delta), 'badCrl', 'unsupported critical CRL extension 2.5.29.27');
    // An entry whose reasonCode is 8, removeFromCRL.
    const remove = Buffer.from(intCrl);
    const reason = remove.indexOf(Buffer.from('0603551d1504030a01', 'hex'));
    remove[reason + 9] = 8;
    assertPkiError(() => parseCrl(remove), 'badCrl', /removeFromCRL/);
  });
});

describe('isCrlSignedBy', () => {
  it('is true for the issuer and false for another name or another key with the same name', () => {
    const parsed = parseCrl(intCrl);
    assert.ok(isCrlSignedBy(parsed, int.cert));
    assert.equal(isCrlSignedBy(parsed, root.cert), false);
    assert.deepEqual(Buffer.from(impostor.cert.subjectDer), Buffer.from(int.cert.subjectDer));
    assert.equal(isCrlSignedBy(parsed, impostor.cert), false);
  });

  it('never accepts a CRL with any single byte changed', () => {
    const small = buildCrl(crlInput(int, { entries: entries.slice(0, 2) }));
    for (let i = 0; i < small.length; i++) {
      const flipped = Uint8Array.from(small);
      flipped[i]! ^= 0x01;
      let parsed;
      try {
        parsed = parseCrl(flipped);
      } catch (err) {
        assert.ok(err instanceof PkiError && err.code === 'badCrl', `byte ${i}: ${String(err)}`);
        continue;
      }
      assert.equal(isCrlSignedBy(parsed, int.cert), false, `byte ${i} flipped still verifies`);
    }
  });
});
