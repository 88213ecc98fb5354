import { PkiError } from './errors.js';

/** How a signature algorithm is computed with node:crypto. */
export interface SignatureAlgorithm {
  oid: string;
  name: string;
  /** node:crypto asymmetricKeyType of the key that makes this signature. */
  keyType: 'ec' | 'rsa' | 'ed25519';
  /** Digest passed to crypto.sign/verify; null for Ed25519, which hashes internally. */
  hash: 'sha256' | 'sha384' | 'sha512' | null;
  /** RFC 5754 §3.2: RSA algorithm identifiers carry NULL parameters, ECDSA and EdDSA none. */
  nullParameters: boolean;
}

// One row per algorithm we accept in a CSR or use to sign. SHA-1 is deliberately absent.
const SIGNATURE_ALGORITHMS: readonly SignatureAlgorithm[] = [
  { oid: '1.2.840.10045.4.3.2', name: 'ecdsa-with-SHA256', keyType: 'ec', hash: 'sha256', nullParameters: false },
  { oid: '1.2.840.10045.4.3.3', name: 'ecdsa-with-SHA384', keyType: 'ec', hash: 'sha384', nullParameters: false },
  { oid: '1.2.840.10045.4.3.4', name: 'ecdsa-with-SHA512', keyType: 'ec', hash: 'sha512', nullParameters: false },
  {
    oid: '1.2.840.113549.1.1.11',
    name: 'sha256WithRSAEncryption',
    keyType: 'rsa',
    hash: 'sha256',
    nullParameters: true,
  },
  {
    oid: '1.2.840.113549.1.1.12',
    name: 'sha384WithRSAEncryption',
    keyType: 'rsa',
    hash: 'sha384',
    nullParameters: true,
  },
  {
    oid: '1.2.840.113549.1.1.13',
    name: 'sha512WithRSAEncryption',
    keyType: 'rsa',
    hash: 'sha512',
    nullParameters: true,
  },
  { oid: '1.3.101.112', name: 'Ed25519', keyType: 'ed25519', hash: null, nullParameters: false },
];

/** Looks up a signature algorithm by OID; an unknown or weak one is refused by name. */
export function signatureAlgorithmByOid(oid: string): SignatureAlgorithm {
  const row = SIGNATURE_ALGORITHMS.find((a) => a.oid === oid);
  if (row === undefined) {
    const weak = oid === '1.2.840.113549.1.1.5' || oid === '1.2.840.10045.4.1';
    throw new PkiError(
      'unsupportedAlgorithm',
      weak ? 'SHA-1 signatures are refused' : `signature algorithm ${oid} is not supported`,
    );
  }
  return row;
}

/** Looks up the algorithm used to sign with a key of the given type. */
export function signatureAlgorithmByName(name: string): SignatureAlgorithm {
  const row = SIGNATURE_ALGORITHMS.find((a) => a.name === name);
  if (row === undefined) throw new PkiError('unsupportedAlgorithm', `signature algorithm ${name} is not supported`);
  return row;
}

/** Key types a policy can allow, as rows: what a request names and what node:crypto reports. */
export type KeyTypeName = 'EC-P256' | 'EC-P384' | 'Ed25519' | 'RSA';

export interface KeyTypeRow {
  name: KeyTypeName;
  keyType: 'ec' | 'rsa' | 'ed25519';
  /** node:crypto's curve name, for EC keys. */
  namedCurve?: string;
  /** The algorithm a CA key of this type signs with. */
  signatureAlgorithm: string;
}

const KEY_TYPES: readonly KeyTypeRow[] = [
  { name: 'EC-P256', keyType: 'ec', namedCurve: 'prime256v1', signatureAlgorithm: 'ecdsa-with-SHA256' },
  { name: 'EC-P384', keyType: 'ec', namedCurve: 'secp384r1', signatureAlgorithm: 'ecdsa-with-SHA384' },
  { name: 'Ed25519', keyType: 'ed25519', signatureAlgorithm: 'Ed25519' },
  { name: 'RSA', keyType: 'rsa', signatureAlgorithm: 'sha256WithRSAEncryption' },
];

export const KEY_TYPE_NAMES: readonly KeyTypeName[] = KEY_TYPES.map((k) => k.name);

/** Looks up a key type row by its policy name. */
export function keyTypeByName(name: string): KeyTypeRow {
  const row = KEY_TYPES.find((k) => k.name === name);
  if (row === undefined) {
    throw new PkiError('unsupportedKey', `key type ${name} is not supported (use one of ${KEY_TYPE_NAMES.join(', ')})`);
  }
  return row;
}

/** Finds the row for a node:crypto key, or throws for a type we never accept (DSA, X25519, …). */
export function keyTypeOf(keyType: string | undefined, namedCurve: string | undefined): KeyTypeRow {
  const row = KEY_TYPES.find(
    (k) => k.keyType === keyType && (k.namedCurve === undefined || k.namedCurve === namedCurve),
  );
  if (row === undefined) {
    const what = keyType === 'ec' ? `EC key on curve ${namedCurve ?? 'unknown'}` : `${keyType ?? 'unknown'} key`;
    throw new PkiError('unsupportedKey', `${what} is not supported (use ECDSA P-256/P-384, Ed25519 or RSA)`);
  }
  return row;
}
