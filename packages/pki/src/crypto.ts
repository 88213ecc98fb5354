/**
 * The one module that does public-key work with node:crypto. It is the hot path of issuance
 * (verify the CSR, sign the certificate), which is why it does not go through WebCrypto: node:crypto
 * signs ECDSA P-256 about 20× faster than @peculiar/webcrypto on our machines.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign as nodeSign,
  verify as nodeVerify,
  type KeyObject,
} from 'node:crypto';
import {
  keyTypeByName,
  keyTypeOf,
  signatureAlgorithmByName,
  type KeyTypeName,
  type KeyTypeRow,
  type SignatureAlgorithm,
} from './algorithms.js';
import { readChildren, readTlv } from './der.js';
import { PkiError } from './errors.js';
import { checkRsaPublicKey, RSA_MIN_BITS } from './rsa-key.js';

export type { KeyObject } from 'node:crypto';

export { RSA_MAX_BITS, RSA_MIN_BITS } from './rsa-key.js';

export interface PublicKeyInfo {
  /** DER SubjectPublicKeyInfo, exactly as it will appear in a certificate. */
  spki: Uint8Array;
  keyObject: KeyObject;
  type: KeyTypeRow;
  /** Modulus length for RSA keys. */
  bits?: number;
}

/** Parses a DER SubjectPublicKeyInfo and classifies it, refusing key types and sizes we never sign. */
export function importPublicKey(spki: Uint8Array): PublicKeyInfo {
  let keyObject: KeyObject;
  try {
    // spki is copied into certificates as is: bytes after the structure would corrupt them.
    if (readTlv(spki, 0).end !== spki.length) throw new PkiError('badDer', 'bytes after the SubjectPublicKeyInfo');
    keyObject = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (cause) {
    throw new PkiError('unsupportedKey', 'the public key cannot be parsed', { cause });
  }
  return describeKey(keyObject, spki);
}

// SPKI algorithm and curve OIDs (RFC 5480, RFC 8410, RFC 3279), as DER bytes: classifying a key
// by them skips node's asymmetricKeyDetails, which costs a quarter of a key import.
const EC_PUBLIC_KEY = Buffer.from('06072a8648ce3d0201', 'hex');
const CURVES: ReadonlyArray<[Buffer, string]> = [
  [Buffer.from('06082a8648ce3d030107', 'hex'), 'prime256v1'],
  [Buffer.from('06052b81040022', 'hex'), 'secp384r1'],
];
const ED25519 = Buffer.from('06032b6570', 'hex');

function classify(
  spki: Uint8Array,
  keyObject: KeyObject,
): { keyType: string | undefined; namedCurve: string | undefined } {
  const alg = readChildren(spki, readTlv(spki, 0))[0];
  if (alg !== undefined) {
    const parts = readChildren(spki, alg).map((t) => Buffer.from(spki.subarray(t.start, t.end)));
    if (parts[0]?.equals(EC_PUBLIC_KEY)) {
      const curve = CURVES.find(([oid]) => parts[1]?.equals(oid));
      if (curve !== undefined) return { keyType: 'ec', namedCurve: curve[1] };
    } else if (parts[0]?.equals(ED25519)) {
      return { keyType: 'ed25519', namedCurve: undefined };
    }
  }
  return { keyType: keyObject.asymmetricKeyType, namedCurve: keyObject.asymmetricKeyDetails?.namedCurve };
}

function describeKey(keyObject: KeyObject, spki: Uint8Array): PublicKeyInfo {
  const { keyType, namedCurve } = classify(spki, keyObject);
  const type = keyTypeOf(keyType, namedCurve);
  if (type.keyType === 'rsa') {
    // Size and exponent are checked here, before any caller verifies a signature with the key.
    const details = keyObject.asymmetricKeyDetails;
    const bits = details?.modulusLength ?? 0;
    checkRsaPublicKey(bits, details?.publicExponent ?? 0n);
    return { spki, keyObject, type, bits };
  }
  return { spki, keyObject, type };
}

/** Describes the public half of a private key. */
export function publicKeyOf(privateKey: KeyObject): PublicKeyInfo {
  const pub = createPublicKey(privateKey);
  return describeKey(pub, new Uint8Array(pub.export({ format: 'der', type: 'spki' })));
}

/** Generates a key pair of a supported type (RSA defaults to 2048 bits). */
export function generateKeyPair(
  name: KeyTypeName,
  rsaBits = RSA_MIN_BITS,
): { privateKey: KeyObject; publicKey: KeyObject } {
  const row = keyTypeByName(name);
  switch (row.keyType) {
    case 'ec':
      return generateKeyPairSync('ec', { namedCurve: row.namedCurve! });
    case 'ed25519':
      return generateKeyPairSync('ed25519');
    case 'rsa':
      return generateKeyPairSync('rsa', { modulusLength: rsaBits });
  }
}

/** Something that signs bytes with a CA key; the key itself never leaves the closure. */
export interface Signer {
  algorithm: SignatureAlgorithm;
  publicKey: PublicKeyInfo;
  sign(data: Uint8Array): Uint8Array;
}

/** Wraps a private key as a Signer, choosing the signature algorithm from the key type. */
export function createSigner(privateKey: KeyObject): Signer {
  const publicKey = publicKeyOf(privateKey);
  const algorithm = signatureAlgorithmByName(publicKey.type.signatureAlgorithm);
  return {
    algorithm,
    publicKey,
    sign: (data) => new Uint8Array(nodeSign(algorithm.hash, data, privateKey)),
  };
}

/** Verifies a signature (DER-encoded for ECDSA, as X.509 carries it); false on any mismatch. */
export function verifySignature(
  key: PublicKeyInfo,
  algorithm: SignatureAlgorithm,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (key.type.keyType !== algorithm.keyType) return false;
  try {
    return nodeVerify(algorithm.hash, data, key.keyObject, signature);
  } catch {
    return false;
  }
}

export function sha1(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha1').update(data).digest());
}

export function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

/**
 * The key identifier of RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING's
 * value (without tag, length and unused-bits byte). Computed directly from DER because
 * @peculiar/x509's version re-imports the key through WebCrypto and costs ~1 ms per certificate.
 */
export function keyIdentifier(spki: Uint8Array): Uint8Array {
  const outer = readTlv(spki, 0);
  const bits = readChildren(spki, outer)[1];
  if (bits === undefined || bits.tag !== 0x03) throw new PkiError('badDer', 'SubjectPublicKeyInfo has no BIT STRING');
  return sha1(spki.subarray(bits.contentStart + 1, bits.end));
}

/** Whether two keys (public or private) share the same public key. */
export function samePublicKey(a: KeyObject, b: KeyObject): boolean {
  const pa = a.type === 'private' ? createPublicKey(a) : a;
  const pb = b.type === 'private' ? createPublicKey(b) : b;
  return Buffer.from(pa.export({ format: 'der', type: 'spki' })).equals(pb.export({ format: 'der', type: 'spki' }));
}

/** Exports a private key as unencrypted PKCS#8 DER, for sealing by the store. */
export function exportPrivateKey(key: KeyObject): Uint8Array {
  return new Uint8Array(key.export({ format: 'der', type: 'pkcs8' }));
}

/** Imports unencrypted PKCS#8 DER (the form the store unseals). */
export function importPrivateKey(der: Uint8Array): KeyObject {
  try {
    return createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
  } catch (cause) {
    throw new PkiError('unsupportedKey', 'the private key cannot be parsed', { cause });
  }
}

/** Exports a private key as passphrase-encrypted PKCS#8 PEM (PBES2, AES-256-CBC), for key files. */
export function exportEncryptedPrivateKey(key: KeyObject, passphrase: string): string {
  return key.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase }) as string;
}

/** Reads a private key from PEM, encrypted (with a passphrase) or not. */
export function importPrivateKeyPem(pem: string, passphrase?: string): KeyObject {
  try {
    return createPrivateKey(
      passphrase === undefined ? { key: pem, format: 'pem' } : { key: pem, format: 'pem', passphrase },
    );
  } catch (cause) {
    throw new PkiError('unsupportedKey', 'the private key cannot be read (wrong passphrase or not a key)', { cause });
  }
}
