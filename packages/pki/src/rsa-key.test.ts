import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { importPublicKey } from './crypto.js';
import { parseCsr } from './csr.js';
import { bitString, integerBytes, nullValue, oid, sequence, tlv } from './der.js';
import { encodeName } from './encode.js';
import { RSA_MAX_BITS, checkRsaPublicKey, rsaParameters } from './rsa-key.js';
import { assertPkiError } from './test-fixtures.js';

/** A positive big-endian integer of exactly `bits` bits (top bit and low bit set): an RSA modulus or exponent. */
function oddOfBits(bits: number): Uint8Array {
  const bytes = randomBytes(Math.ceil(bits / 8));
  const top = (bits - 1) % 8;
  bytes[0] = (bytes[0]! & ((1 << (top + 1)) - 1)) | (1 << top);
  bytes[bytes.length - 1]! |= 1;
  return new Uint8Array(bytes);
}

/** DER INTEGER of an unsigned big-endian value (a 0x00 sign octet when the top bit is set). */
const unsigned = (v: Uint8Array): Uint8Array => integerBytes(v[0]! & 0x80 ? Uint8Array.of(0, ...v) : v);

/** A SubjectPublicKeyInfo (RFC 3279 §2.3.1) for an RSA key built by hand: no key generator makes these. */
function rsaSpki(modulus: Uint8Array, exponent: Uint8Array): Uint8Array {
  const rsaPublicKey = sequence(unsigned(modulus), unsigned(exponent));
  return sequence(sequence(oid('1.2.840.113549.1.1.1'), nullValue()), bitString(rsaPublicKey));
}

/** A CSR around `spki` whose signature is garbage: a refusal that names the key proves the key was checked first. */
function csrWithGarbageSignature(spki: Uint8Array): Uint8Array {
  const info = sequence(tlv(0x02, Uint8Array.of(0)), encodeName({ commonName: 'dos.internal' }), spki, tlv(0xa0));
  return sequence(info, sequence(oid('1.2.840.113549.1.1.11'), nullValue()), bitString(randomBytes(384)));
}

const F4 = Uint8Array.of(1, 0, 1);

describe('RSA key bounds', () => {
  it('refuses a 3072-bit key with a 3064-bit public exponent, as an SPKI and in a CSR, before any signature check', () => {
    const spki = rsaSpki(oddOfBits(3072), oddOfBits(3064));
    assertPkiError(
      () => importPublicKey(spki),
      'unsupportedKey',
      "public exponent must be 65537; this key's has 3064 bits",
    );
    // badCsrSignature would mean the signature was verified (the expensive part) before the key was refused.
    assertPkiError(() => parseCsr(csrWithGarbageSignature(spki)), 'unsupportedKey', 'public exponent must be 65537');
  });

  it('refuses small odd exponents too (3, 17), and an even one', () => {
    for (const e of [Uint8Array.of(3), Uint8Array.of(17), Uint8Array.of(1, 0, 0)]) {
      assertPkiError(() => importPublicKey(rsaSpki(oddOfBits(2048), e)), 'unsupportedKey', 'must be 65537');
    }
  });

  it(`refuses a modulus above ${RSA_MAX_BITS} bits with exponent 65537, before any signature check`, () => {
    const spki = rsaSpki(oddOfBits(RSA_MAX_BITS + 8), F4);
    assertPkiError(() => importPublicKey(spki), 'unsupportedKey', `larger than ${RSA_MAX_BITS} bits`);
    assertPkiError(() => parseCsr(csrWithGarbageSignature(spki)), 'unsupportedKey', `larger than ${RSA_MAX_BITS} bits`);
  });

  it('accepts 2048, 3072, 4096 and 8192 bits with exponent 65537', () => {
    for (const bits of [2048, 3072, 4096, 8192]) assert.equal(importPublicKey(rsaSpki(oddOfBits(bits), F4)).bits, bits);
  });

  it('reads size and exponent from JWK-style octets, ignoring leading zeros and never building a huge exponent', () => {
    assert.deepEqual(rsaParameters(Uint8Array.of(0, 0x80, 0, 0), F4), { modulusBits: 24, publicExponent: 65537n });
    assert.equal(rsaParameters(oddOfBits(4096), oddOfBits(3064)).publicExponent, 2n ** 64n);
    assert.throws(() => checkRsaPublicKey(4096, 2n ** 64n), /must be 65537/);
    assert.doesNotThrow(() => checkRsaPublicKey(2048, 65537n));
  });
});
