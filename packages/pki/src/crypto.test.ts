import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { keyTypeByName, signatureAlgorithmByOid } from './algorithms.js';
import {
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
  verifySignature,
} from './crypto.js';
import { readTlv } from './der.js';
import { PkiError } from './errors.js';
import { decodePemOne, encodePem } from './pem.js';
import { signDraft } from './sign.js';
import { OpenSsl, leafFor, makeIntermediate, makeRoot, opensslHex, assertPkiError } from './test-fixtures.js';

const spkiOf = (key: KeyObject): Uint8Array => new Uint8Array(key.export({ format: 'der', type: 'spki' }));
const data = new TextEncoder().encode('to be signed');

describe('importPublicKey', () => {
  it('classifies EC P-256, EC P-384, Ed25519 and RSA 2048', () => {
    const p256 = importPublicKey(spkiOf(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey));
    assert.equal(p256.type.name, 'EC-P256');
    const p384 = importPublicKey(spkiOf(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey));
    assert.equal(p384.type.name, 'EC-P384');
    const ed = importPublicKey(spkiOf(generateKeyPairSync('ed25519').publicKey));
    assert.equal(ed.type.name, 'Ed25519');
    const rsaSpki = spkiOf(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey);
    const rsa = importPublicKey(rsaSpki);
    assert.equal(rsa.type.name, 'RSA');
    assert.equal(rsa.bits, 2048);
    assert.deepEqual(rsa.spki, rsaSpki);
  });

  it('refuses RSA 1024 as weak', () => {
    const spki = spkiOf(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey);
    assertPkiError(() => importPublicKey(spki), 'weakKey', 'at least 2048 bits; this one has 1024');
  });

  it('refuses EC secp256k1', () => {
    const spki = spkiOf(generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey);
    assertPkiError(() => importPublicKey(spki), 'unsupportedKey', 'EC key on curve secp256k1 is not supported');
  });

  it('refuses X25519, a key-agreement key', () => {
    const spki = spkiOf(generateKeyPairSync('x25519').publicKey);
    assertPkiError(() => importPublicKey(spki), 'unsupportedKey', 'x25519 key is not supported');
  });

  it('never keeps bytes after the SubjectPublicKeyInfo, since `spki` is copied into certificates as is', () => {
    const spki = spkiOf(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    let kept: Uint8Array | null = null;
    try {
      kept = importPublicKey(Uint8Array.of(...spki, 0x00)).spki;
    } catch (err) {
      assert.ok(err instanceof PkiError, String(err));
      return;
    }
    assert.equal(
      readTlv(kept, 0).end,
      kept.length,
      'trailing bytes would make every certificate for this key malformed',
    );
  });

  it('refuses garbage', () => {
    assertPkiError(
      () => importPublicKey(Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x00)),
      'unsupportedKey',
      'cannot be parsed',
    );
    assertPkiError(() => importPublicKey(new Uint8Array(0)), 'unsupportedKey', 'cannot be parsed');
  });
});

describe('keyIdentifier', () => {
  const openssl = new OpenSsl();
  after(() => openssl.remove());

  it("equals OpenSSL's own subjectKeyIdentifier=hash (RFC 5280 §4.2.1.2 method 1)", () => {
    openssl.run(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'k.pem']);
    openssl.run([
      'req',
      '-x509',
      '-new',
      '-key',
      'k.pem',
      '-subj',
      '/CN=ski',
      '-days',
      '1',
      '-addext',
      'subjectKeyIdentifier=hash',
      '-out',
      'self.pem',
    ]);
    const spki = decodePemOne(openssl.run(['x509', '-in', 'self.pem', '-noout', '-pubkey']), ['PUBLIC KEY']);
    const printed = openssl.run(['x509', '-in', 'self.pem', '-noout', '-ext', 'subjectKeyIdentifier']);
    assert.ok(printed.includes(opensslHex(keyIdentifier(spki))), printed);
  });

  it('is what OpenSSL prints as the Subject Key Identifier of a certificate we sign', () => {
    const root = makeRoot();
    const int = makeIntermediate(root);
    for (const keyType of ['EC-P256', 'RSA', 'Ed25519'] as const) {
      const { draft } = leafFor(int, ['ski.example'], { keyType });
      openssl.write('leaf.pem', encodePem('CERTIFICATE', signDraft(draft, int.signer)));
      const printed = openssl.run(['x509', '-in', 'leaf.pem', '-noout', '-ext', 'subjectKeyIdentifier']);
      assert.equal(keyIdentifier(draft.publicKey.spki).length, 20);
      assert.ok(printed.includes(opensslHex(keyIdentifier(draft.publicKey.spki))), `${keyType}: ${printed}`);
    }
  });

  it('refuses DER that is not a SubjectPublicKeyInfo', () => {
    assertPkiError(() => keyIdentifier(Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x00)), 'badDer', 'no BIT STRING');
  });
});

describe('createSigner', () => {
  for (const [keyType, algorithm, oid] of [
    ['EC-P256', 'ecdsa-with-SHA256', '1.2.840.10045.4.3.2'],
    ['EC-P384', 'ecdsa-with-SHA384', '1.2.840.10045.4.3.3'],
    ['Ed25519', 'Ed25519', '1.3.101.112'],
    ['RSA', 'sha256WithRSAEncryption', '1.2.840.113549.1.1.11'],
  ] as const) {
    it(`signs with ${algorithm} for an ${keyType} key, verifiably`, () => {
      const { privateKey, publicKey } = generateKeyPair(keyType);
      const signer = createSigner(privateKey);
      assert.equal(signer.algorithm.name, algorithm);
      assert.equal(signer.algorithm.oid, oid);
      assert.equal(signer.publicKey.type.name, keyType);
      assert.ok(samePublicKey(signer.publicKey.keyObject, publicKey));
      const sig = signer.sign(data);
      assert.ok(nodeVerify(signer.algorithm.hash, data, publicKey, sig), 'node:crypto verifies the signature');
      assert.ok(verifySignature(signer.publicKey, signer.algorithm, data, sig));
      const tampered = Uint8Array.from(data);
      tampered[0]! ^= 1;
      assert.ok(!verifySignature(signer.publicKey, signer.algorithm, tampered, sig));
    });
  }

  it('does not verify a signature against a key of another type', () => {
    const ec = createSigner(generateKeyPair('EC-P256').privateKey);
    const ed = createSigner(generateKeyPair('Ed25519').privateKey);
    assert.ok(!verifySignature(ed.publicKey, ec.algorithm, data, ec.sign(data)));
    assert.ok(!verifySignature(ec.publicKey, ec.algorithm, data, Uint8Array.of(1, 2, 3)));
  });
});

describe('algorithm tables', () => {
  it('refuses SHA-1 signature algorithms by name', () => {
    assertPkiError(() => signatureAlgorithmByOid('1.2.840.113549.1.1.5'), 'unsupportedAlgorithm', 'SHA-1');
    assertPkiError(() => signatureAlgorithmByOid('1.2.840.10045.4.1'), 'unsupportedAlgorithm', 'SHA-1');
    assertPkiError(
      () => signatureAlgorithmByOid('1.2.3.4'),
      'unsupportedAlgorithm',
      'signature algorithm 1.2.3.4 is not supported',
    );
  });

  it('refuses an unknown key type, listing the supported ones', () => {
    assertPkiError(() => keyTypeByName('DSA'), 'unsupportedKey', 'EC-P256, EC-P384, Ed25519, RSA');
    assertPkiError(() => generateKeyPair('EC-P521' as never), 'unsupportedKey', 'key type EC-P521 is not supported');
  });
});

describe('private key import and export', () => {
  const openssl = new OpenSsl();
  after(() => openssl.remove());
  let key: KeyObject;
  before(() => {
    key = generateKeyPair('EC-P256').privateKey;
  });

  it('round-trips passphrase-encrypted PKCS#8, readable by OpenSSL with the passphrase', () => {
    const passphrase = 'correct horse battery staple';
    const pem = exportEncryptedPrivateKey(key, passphrase);
    assert.ok(pem.startsWith(`-----BEGIN ENCRYPTED ${'PRIVATE'} KEY-----\n`));
    assert.ok(!pem.includes(passphrase));
    assert.ok(samePublicKey(importPrivateKeyPem(pem, passphrase), key));
    openssl.write('enc.pem', pem);
    const pub = openssl.run(['pkey', '-in', 'enc.pem', '-passin', `pass:${passphrase}`, '-pubout']);
    assert.deepEqual(decodePemOne(pub, ['PUBLIC KEY']), publicKeyOf(key).spki);
    const params = openssl.run(['asn1parse', '-in', 'enc.pem']);
    assert.match(params, /PBES2/);
    assert.match(params, /aes-256-cbc/);
  });

  it('refuses a wrong passphrase without echoing it', () => {
    const pem = exportEncryptedPrivateKey(key, 'hunter2-right');
    assert.throws(
      () => importPrivateKeyPem(pem, 'hunter2-wrong'),
      (err: unknown) => {
        assert.ok(err instanceof PkiError);
        assert.equal(err.code, 'unsupportedKey');
        assert.match(err.message, /wrong passphrase or not a key/);
        assert.ok(!err.message.includes('hunter2'));
        return true;
      },
    );
  });

  it('reads an unencrypted PEM key, and refuses text that is not a key', () => {
    const pem = key.export({ format: 'pem', type: 'pkcs8' }) as string;
    assert.ok(samePublicKey(importPrivateKeyPem(pem), key));
    assertPkiError(() => importPrivateKeyPem('not a key'), 'unsupportedKey', 'cannot be read');
  });

  it('round-trips unencrypted PKCS#8 DER and refuses garbage', () => {
    for (const keyType of ['EC-P384', 'Ed25519', 'RSA'] as const) {
      const k = generateKeyPair(keyType).privateKey;
      assert.ok(samePublicKey(importPrivateKey(exportPrivateKey(k)), k));
    }
    assertPkiError(() => importPrivateKey(Uint8Array.of(1, 2, 3)), 'unsupportedKey', 'cannot be parsed');
  });

  it('samePublicKey tells different keys apart', () => {
    assert.ok(!samePublicKey(key, generateKeyPair('EC-P256').privateKey));
  });
});
