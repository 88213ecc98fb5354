import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isIssuedBy, issuerInfo, parseCertificate, readCertificate, readCertificates } from './certificate.js';
import { createSigner, generateKeyPair } from './crypto.js';
import { PkiError } from './errors.js';
import { assertLintClean, lintDraft } from './lints/index.js';
import { encodeName } from './encode.js';
import { encodeCertificates, encodePem } from './pem.js';
import { rootDraft } from './profiles.js';
import { newSerial } from './serial.js';
import { lintAndSign, signDraft } from './sign.js';
import {
  DAY,
  MINUTE,
  NOW,
  OpenSsl,
  URLS,
  at,
  leafFor,
  makeIntermediate,
  makeRoot,
  opensslHex,
  random,
  type TestCa,
  type TestLeaf,
  assertPkiError,
} from './test-fixtures.js';

const openssl = new OpenSsl();
after(() => openssl.remove());

const ROOT_NOT_AFTER = new Date('2060-01-01T00:00:00Z');
const INSIDE = ['a.internal.example', '10.0.0.1', 'spiffe://example.org/x'];
let root: TestCa;
let int: TestCa;
let intC: TestCa;

before(() => {
  root = makeRoot({ notAfter: ROOT_NOT_AFTER });
  int = makeIntermediate(root);
  intC = makeIntermediate(root, {
    commonName: 'Constrained',
    permitDns: ['.internal.example'],
    permitUri: ['example.org'],
  });
  openssl.write('root.pem', root.pem);
  openssl.write('int.pem', int.pem);
  openssl.write('intc.pem', intC.pem);
});

const text = (file: string): string => openssl.run(['x509', '-in', file, '-noout', '-text']);
/** The colon-hex OpenSSL prints under an extension heading. */
const printedId = (file: string, ext: string): string => {
  const out = openssl.run(['x509', '-in', file, '-noout', '-ext', ext]);
  return /((?:[0-9A-F]{2}:){19}[0-9A-F]{2})/.exec(out)?.[1] ?? assert.fail(`no key id in ${out}`);
};
/** OpenSSL's serial as Shortleaf stores it: lower-case hex without leading zeros. */
const printedSerial = (file: string): string =>
  openssl
    .run(['x509', '-in', file, '-noout', '-serial'])
    .trim()
    .replace(/^serial=/, '')
    .toLowerCase()
    .replace(/^0+(?=.)/, '');

/** Signs a leaf through the lints, as the authority does, and writes it for OpenSSL. */
function issue(issuer: TestCa, leaf: TestLeaf, file: string): Uint8Array {
  const der = lintAndSign(leaf.draft, issuer.signer, leaf.ctx);
  openssl.write(file, encodePem('CERTIFICATE', der));
  return der;
}

describe('CA certificates', () => {
  it('the root is self-signed, CA without pathlen, and valid to its GeneralizedTime notAfter', () => {
    assert.ok(openssl.verify('root.pem', null, 'root.pem').ok);
    const t = text('root.pem');
    assert.match(t, /Basic Constraints: critical\s+CA:TRUE\n/);
    assert.match(t, /Key Usage: critical\s+Certificate Sign, CRL Sign\n/);
    assert.match(t, /Signature Algorithm: ecdsa-with-SHA384/);
    assert.doesNotMatch(t, /Authority Key Identifier|Extended Key Usage/);
    assert.equal(printedId('root.pem', 'subjectKeyIdentifier'), opensslHex(root.cert.subjectKeyIdentifier!));
    assert.equal(
      openssl.run(['x509', '-in', 'root.pem', '-noout', '-enddate']).trim(),
      'notAfter=Jan  1 00:00:00 2060 GMT',
    );
    assert.equal(root.cert.notAfter.getTime(), ROOT_NOT_AFTER.getTime());
    assert.ok(root.cert.selfSigned && root.cert.isCa);
    assert.equal(root.cert.pathLen, undefined);
  });

  it('the intermediate chains to the root with CA:TRUE, pathlen:0 and no name constraints', () => {
    const v = openssl.verify('root.pem', null, 'int.pem');
    assert.ok(v.ok, v.output);
    const t = text('int.pem');
    assert.match(t, /Basic Constraints: critical\s+CA:TRUE, pathlen:0\n/);
    assert.match(t, /Key Usage: critical\s+Certificate Sign, CRL Sign\n/);
    assert.doesNotMatch(t, /Name Constraints/);
    assert.equal(printedId('int.pem', 'authorityKeyIdentifier'), printedId('root.pem', 'subjectKeyIdentifier'));
    assert.deepEqual([int.cert.isCa, int.cert.pathLen, int.cert.selfSigned], [true, 0, false]);
    assert.deepEqual([int.cert.permittedDns, int.cert.permittedUri], [[], []]);
  });

  it('the constrained intermediate carries critical permitted subtrees', () => {
    assert.ok(openssl.verify('root.pem', null, 'intc.pem').ok);
    assert.match(
      text('intc.pem'),
      /Name Constraints: critical\s+Permitted:\s+DNS:\.internal\.example\s+URI:example\.org\n/,
    );
    assert.deepEqual(intC.cert.permittedDns, ['.internal.example']);
    assert.deepEqual(intC.cert.permittedUri, ['example.org']);
    assert.deepEqual(intC.info.permittedDns, ['.internal.example']);
  });
});

describe('leaf certificates', () => {
  for (const keyType of ['EC-P256', 'RSA', 'Ed25519'] as const) {
    it(`an ${keyType} leaf verifies for TLS server and client and carries the leaf profile`, () => {
      const leaf = leafFor(intC, INSIDE, { keyType });
      const file = `leaf-${keyType}.pem`;
      issue(intC, leaf, file);
      for (const purpose of ['sslserver', 'sslclient']) {
        const v = openssl.verify('root.pem', 'intc.pem', file, ['-purpose', purpose]);
        assert.ok(v.ok, `${purpose}: ${v.output}`);
      }
      const t = text(file);
      assert.match(t, /Basic Constraints: critical\s+CA:FALSE\n/);
      if (keyType === 'RSA') assert.match(t, /Key Usage: critical\s+Digital Signature, Key Encipherment\n/);
      else assert.match(t, /Key Usage: critical\s+Digital Signature\n/);
      assert.match(t, /Extended Key Usage: \s*\n\s+TLS Web Server Authentication, TLS Web Client Authentication\n/);
      assert.match(t, /Subject: CN = a\.internal\.example\n/);
      assert.match(
        t,
        /Subject Alternative Name: \s*\n\s+DNS:a\.internal\.example, IP Address:10\.0\.0\.1, URI:spiffe:\/\/example\.org\/x\n/,
      );
      assert.ok(t.includes(`OCSP - URI:${URLS.ocsp}`));
      assert.ok(t.includes(`CA Issuers - URI:${URLS.caIssuers}`));
      assert.match(
        t,
        new RegExp(`CRL Distribution Points: \\s*\\n\\s+Full Name:\\s+URI:${URLS.crl.replace(/\./g, '\\.')}`),
      );
      assert.match(t, /Signature Algorithm: ecdsa-with-SHA256/);
      assert.equal(printedId(file, 'subjectKeyIdentifier'), opensslHex(leaf.draft.subjectKeyIdentifier));
      assert.equal(printedId(file, 'authorityKeyIdentifier'), printedId('intc.pem', 'subjectKeyIdentifier'));
    });
  }

  it('a leaf without a common name has an empty subject and a critical SAN (RFC 5280 §4.2.1.6)', () => {
    issue(int, leafFor(int, ['svc.example', '2001:db8::1'], { commonName: null }), 'nocn.pem');
    assert.ok(openssl.verify('root.pem', 'int.pem', 'nocn.pem').ok);
    const t = text('nocn.pem');
    assert.match(t, /Subject: \s*\n/);
    assert.match(t, /Subject Alternative Name: critical\s+DNS:svc\.example, IP Address:2001:DB8:0:0:0:0:0:1\n/);
  });

  it('is backdated one minute and lives 24 hours', () => {
    issue(int, leafFor(int, ['dates.example']), 'dates.pem');
    const dates = openssl.run(['x509', '-in', 'dates.pem', '-noout', '-startdate', '-enddate']);
    assert.equal(dates, 'notBefore=Dec 31 23:59:00 2029 GMT\nnotAfter=Jan  2 00:00:00 2030 GMT\n');
  });
});

describe('name constraints', () => {
  it('a SAN outside the issuer constraints fails lint, and OpenSSL would reject it too', () => {
    const leaf = leafFor(intC, ['x.example.com']);
    assertPkiError(
      () => assertLintClean(leaf.draft, leaf.ctx),
      'lintFailed',
      'names_within_issuer_constraints: dns:x.example.com',
    );
    assertPkiError(() => lintAndSign(leaf.draft, intC.signer, leaf.ctx), 'lintFailed', 'outside the issuer');
    openssl.write('outside.pem', encodePem('CERTIFICATE', signDraft(leaf.draft, intC.signer)));
    const v = openssl.verify('root.pem', 'intc.pem', 'outside.pem');
    assert.ok(!v.ok);
    assert.match(v.output, /permitted subtree violation/);
  });

  // The lint exists so that we never sign what a verifier would refuse: test that promise directly.
  function assertLintCleanMeansVerifiable(leaf: TestLeaf, file: string): void {
    openssl.write(file, encodePem('CERTIFICATE', signDraft(leaf.draft, intC.signer)));
    const v = openssl.verify('root.pem', 'intc.pem', file);
    const failures = lintDraft(leaf.draft, leaf.ctx);
    assert.ok(v.ok || failures.length > 0, `lints passed a certificate OpenSSL refuses:\n${v.output}`);
  }

  it('a URI host constraint without a leading dot admits that host only, not its subdomains', () => {
    // RFC 5280 §4.2.1.10: "When the constraint does not begin with a period, it specifies a host."
    assertLintCleanMeansVerifiable(leafFor(intC, ['spiffe://example.org/ok']), 'uri-host.pem');
    assertLintCleanMeansVerifiable(leafFor(intC, ['spiffe://sub.example.org/x'], { commonName: null }), 'uri-sub.pem');
  });

  it('a leaf for an IP address whose CN is that address, under a DNS-constrained issuer', () => {
    // OpenSSL checks a hostname-like CN against DNS constraints when the SAN has no DNS name.
    assertLintCleanMeansVerifiable(leafFor(intC, ['10.0.0.1']), 'cn-ip.pem');
  });
});

describe('parseCertificate', () => {
  let leaf: TestLeaf;
  let der: Uint8Array;
  before(() => {
    leaf = leafFor(int, ['p.example', '192.0.2.1', 'spiffe://example.org/p']);
    der = issue(int, leaf, 'parse.pem');
  });

  it('reads back serial, names, validity and identifiers', () => {
    const c = parseCertificate(der);
    assert.equal(c.serial, printedSerial('parse.pem'));
    assert.match(c.serial, /^[1-9a-f][0-9a-f]*$/);
    assert.deepEqual(c.names, leaf.names);
    assert.equal(c.commonName, 'p.example');
    assert.equal(c.notBefore.getTime(), NOW.getTime() - MINUTE);
    assert.equal(c.notAfter.getTime(), at(DAY).getTime());
    assert.equal(c.isCa, false);
    assert.equal(c.pathLen, undefined);
    assert.equal(c.selfSigned, false);
    assert.deepEqual(c.issuerDer, int.cert.subjectDer);
    assert.deepEqual(c.authorityKeyIdentifier, int.cert.subjectKeyIdentifier);
    assert.deepEqual(c.subjectKeyIdentifier, leaf.draft.subjectKeyIdentifier);
    assert.deepEqual(c.publicKey.spki, leaf.draft.publicKey.spki);
  });

  it('reads a serial whose top bit is set as positive, as OpenSSL does', () => {
    const serial = newSerial((n) => new Uint8Array(n).fill(0xff));
    issue(int, leafFor(int, ['neg.example'], { serial: serial.bytes }), 'topbit.pem');
    assert.equal(printedSerial('topbit.pem'), 'f'.repeat(32));
    assert.equal(readCertificate(openssl.run(['x509', '-in', 'topbit.pem'])).serial, serial.hex);
  });

  it('isIssuedBy checks the issuer name and the signature', () => {
    const c = parseCertificate(der);
    assert.equal(isIssuedBy(c, int.cert), true);
    assert.equal(isIssuedBy(c, root.cert), false);
    assert.equal(isIssuedBy(int.cert, root.cert), true);
    // Same subject name as `int`, different key: only the signature tells them apart.
    const impostor = makeIntermediate(root);
    assert.deepEqual(impostor.cert.subjectDer, int.cert.subjectDer);
    assert.equal(isIssuedBy(c, impostor.cert), false);
    // Same key as the root, another name: the signature verifies, the issuer name does not match.
    const renamed = rootDraft({
      ...root.info,
      serial: newSerial(random).bytes,
      subjectDer: encodeName({ commonName: 'Renamed Root' }),
      commonName: 'Renamed Root',
      publicKey: root.signer.publicKey,
    });
    assert.equal(isIssuedBy(int.cert, parseCertificate(signDraft(renamed, root.signer))), false);
  });

  it('issuerInfo refuses a signer whose key is not the certificate key', () => {
    const other = createSigner(generateKeyPair('EC-P256').privateKey);
    assertPkiError(() => issuerInfo(int.cert, other), 'badCertificate', 'does not match the issuer certificate');
    assert.deepEqual(issuerInfo(int.cert, int.signer).subjectKeyIdentifier, int.cert.subjectKeyIdentifier);
  });

  it('reads PEM bundles and refuses what is not one certificate', () => {
    assert.deepEqual(
      readCertificates(encodeCertificates([der, int.der])).map((c) => c.serial),
      [parseCertificate(der).serial, int.cert.serial],
    );
    assertPkiError(
      () => readCertificate(encodeCertificates([der, int.der])),
      'badPem',
      'expected one certificate, found 2',
    );
    assertPkiError(() => parseCertificate(der.subarray(0, der.length - 1)), 'badCertificate', 'cannot be parsed');
    assertPkiError(() => parseCertificate(Uint8Array.of(0x30, 0x00)), 'badCertificate', 'cannot be parsed');
  });
});
