import { PkiError } from './errors.js';

/**
 * Bounds on RSA public keys, wherever one comes in (CSRs, certificates, ACME account keys). RSA
 * verification costs grow with the modulus and, above all, with the public exponent: a 3072-bit key
 * with a 3064-bit exponent costs ~9 ms per signature check, which an unauthenticated client can
 * make us pay per request. The checks read only the key's size and exponent, so every caller runs
 * them before any signature is verified.
 */

/** Moduli below this are too weak (NIST SP 800-131A; CA/B Forum BR §6.1.5). */
export const RSA_MIN_BITS = 2048;
/** Moduli above this are a denial-of-service lever and no real client needs them. */
export const RSA_MAX_BITS = 8192;

/**
 * The only public exponent we accept, as Boulder's goodkey does (`key.E != 65537` is refused):
 * RFC 8017 allows any odd e ≥ 3, the CA/B Forum BR §6.1.6 ask for an odd e in 2^16+1 … 2^256-1,
 * and every key generator in use (OpenSSL, Go, Node, Java, HSMs) emits 65537. One value keeps
 * verification cost fixed at 17 modular multiplications.
 */
export const RSA_PUBLIC_EXPONENT = 65537n;

/** Refuses an RSA public key whose modulus size or public exponent is outside the bounds above. */
export function checkRsaPublicKey(modulusBits: number, publicExponent: bigint): void {
  if (modulusBits < RSA_MIN_BITS)
    throw new PkiError('weakKey', `RSA keys need at least ${RSA_MIN_BITS} bits; this one has ${modulusBits}`);
  if (modulusBits > RSA_MAX_BITS)
    throw new PkiError(
      'unsupportedKey',
      `RSA keys larger than ${RSA_MAX_BITS} bits are not accepted; this one has ${modulusBits}`,
    );
  if (publicExponent !== RSA_PUBLIC_EXPONENT)
    throw new PkiError(
      'unsupportedKey',
      `the RSA public exponent must be ${RSA_PUBLIC_EXPONENT}; this key's has ${bitLength(publicExponent)} bits`,
    );
}

/** Bit length of a non-negative integer, for messages that must not echo a huge value. */
export function bitLength(n: bigint): number {
  return n <= 0n ? 0 : n.toString(2).length;
}

/**
 * Size and exponent of an RSA key given as big-endian unsigned octets (a JWK's `n` and `e`,
 * RFC 7518 §6.3.1), without importing it: leading zero octets do not count.
 */
export function rsaParameters(
  modulus: Uint8Array,
  exponent: Uint8Array,
): { modulusBits: number; publicExponent: bigint } {
  const n = stripLeadingZeros(modulus);
  const e = stripLeadingZeros(exponent);
  const modulusBits = n.length === 0 ? 0 : (n.length - 1) * 8 + (32 - Math.clz32(n[0]!));
  // An exponent longer than 8 octets is refused by value anyway; do not build a huge bigint for it.
  const publicExponent = e.length > 8 ? 2n ** 64n : e.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
  return { modulusBits, publicExponent };
}

function stripLeadingZeros(bytes: Uint8Array): Uint8Array {
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i++;
  return bytes.subarray(i);
}
