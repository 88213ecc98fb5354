import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';
import type { ScryptOptions } from 'node:crypto';
import { StoreError } from './errors.js';

// Layout: magic | log2(N) | r | p | salt | iv | tag | ciphertext. The KDF parameters travel with
// the blob so they can be raised later without losing the ability to open older blobs.
const magic = Buffer.from('SLS1', 'ascii');
const saltLength = 16;
const ivLength = 12;
const tagLength = 16;
const headerLength = magic.length + 3 + saltLength + ivLength + tagLength;
const keyLength = 32;
const maxmem = 64 * 1024 * 1024;

const sealParams = { log2N: 15, r: 8, p: 1 };

// A blob read from the database chooses its own KDF cost; bound it so a tampered row cannot
// make unsealing take minutes. The memory bound is scrypt's own maxmem check.
const maxLog2N = 20;
const maxR = 32;
const maxP = 16;

const unsealMessage = 'cannot unseal: wrong passphrase or corrupted key';

function deriveKey(passphrase: string, salt: Uint8Array, params: { log2N: number; r: number; p: number }): Promise<Buffer> {
  const options: ScryptOptions = { N: 2 ** params.log2N, r: params.r, p: params.p, maxmem };
  return new Promise((resolve, reject) => {
    // NFC so the same passphrase typed on two systems that compose accents differently still opens the key.
    scrypt(passphrase.normalize('NFC'), salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/**
 * Encrypt a secret (an issuer's private key, in practice) for storage at rest: AES-256-GCM under a
 * key derived from `passphrase` with scrypt, a fresh salt and IV each time. `context` names the row
 * the blob belongs to (e.g. `issuer:<id>`) and is authenticated, so a blob copied into another row
 * will not open there. The result is self-describing (`SLS1` header with the KDF parameters).
 */
export async function sealSecret(plaintext: Uint8Array, passphrase: string, context: string): Promise<Uint8Array> {
  if (passphrase.length === 0) throw new TypeError('sealSecret: the passphrase must not be empty');
  const salt = randomBytes(saltLength);
  const iv = randomBytes(ivLength);
  const key = await deriveKey(passphrase, salt, sealParams);
  try {
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: tagLength });
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const params = Buffer.from([sealParams.log2N, sealParams.r, sealParams.p]);
    return new Uint8Array(Buffer.concat([magic, params, salt, iv, cipher.getAuthTag(), ciphertext]));
  } finally {
    key.fill(0);
  }
}

/**
 * Open a blob made by `sealSecret` with the same passphrase and context. Every failure (wrong
 * passphrase, wrong context, tampering, truncation, a format we do not know) is the same
 * `StoreError('unsealFailed')`: telling them apart would help an attacker more than an operator,
 * and the message never repeats the passphrase.
 */
export async function unsealSecret(blob: Uint8Array, passphrase: string, context: string): Promise<Uint8Array> {
  const bytes = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  if (bytes.length < headerLength || !bytes.subarray(0, magic.length).equals(magic)) {
    throw new StoreError('unsealFailed', unsealMessage);
  }
  let offset = magic.length;
  const log2N = bytes[offset++] ?? 0;
  const r = bytes[offset++] ?? 0;
  const p = bytes[offset++] ?? 0;
  if (log2N < 1 || log2N > maxLog2N || r < 1 || r > maxR || p < 1 || p > maxP) {
    throw new StoreError('unsealFailed', unsealMessage);
  }
  const salt = bytes.subarray(offset, (offset += saltLength));
  const iv = bytes.subarray(offset, (offset += ivLength));
  const tag = bytes.subarray(offset, (offset += tagLength));
  const ciphertext = bytes.subarray(offset);

  let key: Buffer;
  try {
    key = await deriveKey(passphrase, salt, { log2N, r, p });
  } catch (err) {
    throw new StoreError('unsealFailed', unsealMessage, { cause: err });
  }
  let head: Buffer | undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: tagLength });
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(tag);
    head = decipher.update(ciphertext);
    const tail = decipher.final();
    // One plain Uint8Array holds the plaintext; Node's intermediate buffers are wiped below.
    const plaintext = new Uint8Array(head.length + tail.length);
    plaintext.set(head);
    plaintext.set(tail, head.length);
    tail.fill(0);
    return plaintext;
  } catch (err) {
    throw new StoreError('unsealFailed', unsealMessage, { cause: err });
  } finally {
    // GCM hands out plaintext before it checks the tag; do not leave it behind on failure either.
    head?.fill(0);
    key.fill(0);
  }
}
