import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sign as nodeSign, type KeyObject } from 'node:crypto';
import { createSigner, generateKeyPair, publicKeyOf } from './crypto.js';
import { MAX_CSR_BYTES, createCsr, csrToPem, parseCsr } from './csr.js';
import { bitString, integer, oid, sequence, tlv } from './der.js';
import { PkiError } from './errors.js';
import { parseName } from './names.js';
import { decodePemOne, encodePem } from './pem.js';
import { OpenSsl, assertPkiError } from './test-fixtures.js';

const names = ['a.example', '10.0.0.1', '2001:db8::1', 'spiffe://example.org/x'].map(parseName);
/** A copy of `der` with the low bit of one byte flipped; a negative index counts from the end. */
const flip = (der: Uint8Array, index: number): Uint8Array => {
  const out = Uint8Array.from(der);
  out[index < 0 ? out.length + index : index]! ^= 0x01;
  return out;
};

const openssl = new OpenSsl();
after(() => openssl.remove());

/** Makes a key and a CSR with `openssl req -new`, returning the CSR's DER. */
function opensslCsr(name: string, keyArgs: readonly string[], reqArgs: readonly string[]): Uint8Array {
  openssl.run(['genpkey', ...keyArgs, '-out', `${name}.key`]);
  openssl.run(['req', '-new', '-key', `${name}.key`, ...reqArgs, '-out', `${name}.csr`]);
  return decodePemOne(openssl.run(['req', '-in', `${name}.csr`, '-outform', 'PEM']), ['CERTIFICATE REQUEST']);
}

describe('createCsr', () => {
  for (const keyType of ['EC-P256', 'EC-P384', 'Ed25519', 'RSA'] as const) {
    it(`makes an ${keyType} CSR that openssl req -verify accepts, naming every SAN`, () => {
      const key = generateKeyPair(keyType).privateKey;
      const der = createCsr(key, { commonName: 'a.example', organization: 'Shortleaf' }, names);
      openssl.write(`ours-${keyType}.csr`, csrToPem(der));
      assert.ok(openssl.verifyCsr(`ours-${keyType}.csr`));
      const text = openssl.run(['req', '-in', `ours-${keyType}.csr`, '-noout', '-text']);
      assert.match(text, /Subject: O = Shortleaf, CN = a\.example/);
      assert.match(
        text,
        /DNS:a\.example, IP Address:10\.0\.0\.1, IP Address:2001:DB8:0:0:0:0:0:1, URI:spiffe:\/\/example\.org\/x/,
      );
      const parsed = parseCsr(csrToPem(der));
      assert.equal(parsed.commonName, 'a.example');
      assert.deepEqual(parsed.requestedNames, names);
      assert.deepEqual(parsed.publicKey.spki, publicKeyOf(key).spki);
      assert.equal(parsed.signatureAlgorithm.name, createSigner(key).algorithm.name);
    });
  }

  it('makes a CSR without names or common name', () => {
    const der = createCsr(generateKeyPair('EC-P256').privateKey, { commonName: null }, []);
    openssl.write('bare.csr', csrToPem(der));
    assert.ok(openssl.verifyCsr('bare.csr'));
    const parsed = parseCsr(der);
    assert.equal(parsed.commonName, null);
    assert.deepEqual(parsed.requestedNames, []);
  });

  it('openssl req -verify itself refuses a tampered CSR, so the checks above mean something', () => {
    const der = createCsr(generateKeyPair('EC-P256').privateKey, { commonName: 'a.example' }, names);
    openssl.write('tampered.csr', csrToPem(flip(der, -1)));
    assert.ok(!openssl.verifyCsr('tampered.csr'));
  });
});

describe('parseCsr', () => {
  let ecDer: Uint8Array;
  before(() => {
    ecDer = opensslCsr(
      'ec',
      ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
      ['-subj', '/CN=a.example', '-addext', 'subjectAltName=DNS:a.example,IP:10.0.0.1,URI:spiffe://example.org/x'],
    );
  });

  it('reads a CSR made by openssl req -new with an EC P-256 key', () => {
    const csr = parseCsr(ecDer);
    assert.equal(csr.commonName, 'a.example');
    assert.deepEqual(csr.requestedNames, [
      { kind: 'dns', value: 'a.example' },
      { kind: 'ip', value: '10.0.0.1' },
      { kind: 'uri', value: 'spiffe://example.org/x' },
    ]);
    assert.equal(csr.publicKey.type.name, 'EC-P256');
    assert.equal(csr.signatureAlgorithm.name, 'ecdsa-with-SHA256');
    assert.deepEqual(csr.der, ecDer);
  });

  it('reads PEM with either label', () => {
    assert.equal(parseCsr(encodePem('CERTIFICATE REQUEST', ecDer)).commonName, 'a.example');
    assert.equal(parseCsr(encodePem('NEW CERTIFICATE REQUEST', ecDer)).commonName, 'a.example');
    assertPkiError(() => parseCsr(encodePem('CERTIFICATE', ecDer)), 'badPem', 'CERTIFICATE REQUEST');
  });

  it('reads an Ed25519 CSR made by openssl', () => {
    const der = opensslCsr(
      'ed',
      ['-algorithm', 'ED25519'],
      ['-subj', '/CN=ed.example', '-addext', 'subjectAltName=DNS:ed.example'],
    );
    const csr = parseCsr(der);
    assert.equal(csr.publicKey.type.name, 'Ed25519');
    assert.equal(csr.signatureAlgorithm.name, 'Ed25519');
    assert.deepEqual(csr.requestedNames, [{ kind: 'dns', value: 'ed.example' }]);
  });

  it('refuses a CSR with one flipped byte in the signature', () => {
    assertPkiError(() => parseCsr(flip(ecDer, -1)), 'badCsrSignature', 'does not verify');
  });

  it('refuses a CSR whose signed data was changed after signing', () => {
    const i = Buffer.from(ecDer).indexOf('a.example');
    assert.ok(i > 0);
    assertPkiError(() => parseCsr(flip(ecDer, i)), 'badCsrSignature', 'does not verify with its own public key');
  });

  it('refuses a CSR signed with SHA-1', () => {
    const der = opensslCsr(
      'sha1',
      ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
      ['-sha1', '-subj', '/CN=old.example'],
    );
    assertPkiError(() => parseCsr(der), 'unsupportedAlgorithm', 'SHA-1');
  });

  it('refuses an RSA 1024 key as weak', () => {
    const der = opensslCsr(
      'rsa1024',
      ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'],
      ['-subj', '/CN=weak.example'],
    );
    assertPkiError(() => parseCsr(der), 'weakKey', '2048');
  });

  it('refuses truncated DER', () => {
    assertPkiError(() => parseCsr(ecDer.subarray(0, ecDer.length - 5)), 'badCsr', 'not valid DER');
    assertPkiError(() => parseCsr(ecDer.subarray(0, 1)), 'badCsr', 'not valid DER');
    assertPkiError(() => parseCsr(Uint8Array.of(...ecDer, 0)), 'badCsr', 'not valid DER');
  });

  it(`refuses a CSR larger than ${MAX_CSR_BYTES} bytes, even a validly signed one`, () => {
    const many = Array.from({ length: 300 }, (_, i) => parseName(`host-${i}-${'x'.repeat(40)}.example`));
    const big = createCsr(generateKeyPair('EC-P256').privateKey, { commonName: null }, many);
    assert.ok(big.length > MAX_CSR_BYTES, `only ${big.length} bytes`);
    openssl.write('big.csr', csrToPem(big));
    assert.ok(openssl.verifyCsr('big.csr'), 'the CSR itself is valid');
    assertPkiError(() => parseCsr(big), 'badCsr', `larger than ${MAX_CSR_BYTES} bytes`);
    assertPkiError(() => parseCsr(csrToPem(big)), 'badCsr', 'larger than');
    assert.equal(
      parseCsr(createCsr(generateKeyPair('EC-P256').privateKey, { commonName: null }, many.slice(0, 100)))
        .requestedNames.length,
      100,
    );
  });

  it('refuses a name type we do not issue', () => {
    const der = opensslCsr(
      'othername',
      ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
      ['-subj', '/CN=x', '-addext', 'subjectAltName=RID:1.2.3.4'],
    );
    assertPkiError(() => parseCsr(der), 'badCsr', 'only DNS, IP, URI and email');
  });

  it('reads an email SAN as an email name, its domain lower-cased, and refuses a malformed one', () => {
    const der = opensslCsr(
      'email',
      ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
      ['-subj', '/CN=x', '-addext', 'subjectAltName=email:Alice@Eng.Example'],
    );
    assert.deepEqual(parseCsr(der).requestedNames, [{ kind: 'email', value: 'Alice@eng.example' }]);
    const bad = opensslCsr(
      'bademail',
      ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
      ['-subj', '/CN=x', '-addext', 'subjectAltName=email:a@b.example@evil.example'],
    );
    assertPkiError(() => parseCsr(bad), 'badCsr', 'exactly one "@"');
  });

  it('refuses a malformed requested name with badCsr, naming it', () => {
    const der = opensslCsr(
      'badname',
      ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
      ['-subj', '/CN=x', '-addext', 'subjectAltName=DNS:bad_name.example'],
    );
    assertPkiError(() => parseCsr(der), 'badCsr', 'bad_name.example');
  });

  describe('hand-built CertificationRequestInfo', () => {
    let key: KeyObject;
    before(() => {
      key = generateKeyPair('EC-P256').privateKey;
    });
    const signed = (info: Uint8Array): Uint8Array =>
      sequence(info, sequence(oid('1.2.840.10045.4.3.2')), bitString(new Uint8Array(nodeSign('sha256', info, key))));
    const cn = (v: string): Uint8Array => sequence(tlv(0x31, sequence(oid('2.5.4.3'), tlv(0x0c, Buffer.from(v)))));

    it('accepts version 0 with no attributes at all', () => {
      const csr = parseCsr(signed(sequence(integer(0), cn('plain.example'), publicKeyOf(key).spki)));
      assert.equal(csr.commonName, 'plain.example');
      assert.deepEqual(csr.requestedNames, []);
    });

    it('refuses any version but 0 (v1)', () => {
      assertPkiError(
        () => parseCsr(signed(sequence(integer(1), cn('v2.example'), publicKeyOf(key).spki, tlv(0xa0)))),
        'badCsr',
        'only CSR version 1',
      );
    });

    it('refuses an unknown signature algorithm', () => {
      const info = sequence(integer(0), cn('x.example'), publicKeyOf(key).spki, tlv(0xa0));
      const der = sequence(info, sequence(oid('1.2.3.4')), bitString(new Uint8Array(nodeSign('sha256', info, key))));
      assertPkiError(() => parseCsr(der), 'unsupportedAlgorithm', '1.2.3.4');
    });

    it('refuses a signature made with a different key', () => {
      const other = generateKeyPair('EC-P256').privateKey;
      const info = sequence(integer(0), cn('x.example'), publicKeyOf(key).spki, tlv(0xa0));
      const der = sequence(
        info,
        sequence(oid('1.2.840.10045.4.3.2')),
        bitString(new Uint8Array(nodeSign('sha256', info, other))),
      );
      assertPkiError(() => parseCsr(der), 'badCsrSignature', 'does not verify');
    });
  });
});
