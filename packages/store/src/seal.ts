import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, scrypt } from 'node:crypto';
import type { ScryptOptions } from 'node:crypto';
import { StoreError } from './errors.js';

// Two self-describing layouts, the same length:
//   SLS1 | log2(N) | r | p | salt | iv | tag | ciphertext   AES key = scrypt(passphrase, salt)
//   SLS2 | log2(N) | r | p | salt | iv | tag | ciphertext   AES key = HKDF(scrypt(passphrase, salt), context)
// SLS1 ran scrypt (~120 ms of CPU) for every seal and unseal, so every External Account Binding
// attempt paid it before its MAC was checked. SLS2 derives a master key once per process, from the
// data directory's salt (kept in `settings`), and each row's key from it with HKDF, which costs
// microseconds; the row's context is also the AES-GCM associated data. Both keep the KDF
// parameters in the blob, so they can be raised later, and SLS1 blobs from existing databases
// still open (they are left as they are: a row is re-sealed in SLS2 only when it is written again).
const magicV1 = Buffer.from('SLS1', 'ascii');
const magicV2 = Buffer.from('SLS2', 'ascii');
const saltLength = 16;
const ivLength = 12;
const tagLength = 16;
const headerLength = magicV1.length + 3 + saltLength + ivLength + tagLength;
const keyLength = 32;
const maxmem = 64 * 1024 * 1024;

export interface KdfParams {
  log2N: number;
  r: number;
  p: number;
}

const sealParams: KdfParams = { log2N: 15, r: 8, p: 1 };

// A blob read from the database chooses its own KDF cost; bound it so a tampered row cannot
// make unsealing take minutes. The memory bound is scrypt's own maxmem check.
const maxLog2N = 20;
const maxR = 32;
const maxP = 16;

const unsealMessage = 'cannot unseal: wrong passphrase or corrupted key';

/** Derives a key from a passphrase; `scryptKdf` in production, injectable so tests can count calls. */
export type Kdf = (passphrase: string, salt: Uint8Array, params: KdfParams) => Promise<Buffer>;

/** scrypt (RFC 7914) with our memory bound; the passphrase is NFC-normalised. */
export const scryptKdf: Kdf = (passphrase, salt, params) => {
  const options: ScryptOptions = { N: 2 ** params.log2N, r: params.r, p: params.p, maxmem };
  return new Promise((resolve, reject) => {
    // NFC so the same passphrase typed on two systems that compose accents differently still opens the key.
    scrypt(passphrase.normalize('NFC'), salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
};

const paramsInBounds = ({ log2N, r, p }: KdfParams): boolean =>
  log2N >= 1 && log2N <= maxLog2N && r >= 1 && r <= maxR && p >= 1 && p <= maxP;

/** The key one row's SLS2 blob is sealed under: HKDF-SHA256 of the master key, bound to the row's context. */
function rowKey(master: Buffer, context: string): Buffer {
  // HKDF's info is limited to 1024 bytes; a digest of the context fits whatever the context is.
  const info = Buffer.concat([
    Buffer.from('shortleaf-seal-v2\0', 'ascii'),
    createHash('sha256').update(context, 'utf8').digest(),
  ]);
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), info, keyLength));
}

function encrypt(
  magic: Buffer,
  params: KdfParams,
  salt: Uint8Array,
  key: Buffer,
  plaintext: Uint8Array,
  context: string,
): Uint8Array {
  const iv = randomBytes(ivLength);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: tagLength });
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const header = Buffer.from([params.log2N, params.r, params.p]);
  return new Uint8Array(Buffer.concat([magic, header, salt, iv, cipher.getAuthTag(), ciphertext]));
}

interface ParsedBlob {
  version: 1 | 2;
  params: KdfParams;
  salt: Buffer;
  iv: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

function parseBlob(blob: Uint8Array): ParsedBlob {
  const bytes = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const magic = bytes.subarray(0, magicV1.length);
  const version = magic.equals(magicV1) ? 1 : magic.equals(magicV2) ? 2 : null;
  if (bytes.length < headerLength || version === null) throw new StoreError('unsealFailed', unsealMessage);
  let offset = magicV1.length;
  const params = { log2N: bytes[offset++] ?? 0, r: bytes[offset++] ?? 0, p: bytes[offset++] ?? 0 };
  if (!paramsInBounds(params)) throw new StoreError('unsealFailed', unsealMessage);
  const salt = bytes.subarray(offset, (offset += saltLength));
  const iv = bytes.subarray(offset, (offset += ivLength));
  const tag = bytes.subarray(offset, (offset += tagLength));
  return { version, params, salt, iv, tag, ciphertext: bytes.subarray(offset) };
}

function decrypt(parsed: ParsedBlob, key: Buffer, context: string): Uint8Array {
  let head: Buffer | undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, parsed.iv, { authTagLength: tagLength });
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(parsed.tag);
    head = decipher.update(parsed.ciphertext);
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
  }
}

/** The key an SLS1 blob is sealed under, or an SLS2 blob's master key: scrypt over the blob's salt. */
async function blobKey(
  parsed: ParsedBlob,
  derive: (salt: Uint8Array, params: KdfParams) => Promise<Buffer>,
): Promise<Buffer> {
  try {
    return await derive(parsed.salt, parsed.params);
  } catch (err) {
    throw new StoreError('unsealFailed', unsealMessage, { cause: err });
  }
}

/**
 * Encrypt a secret (an issuer's private key, an EAB HMAC key) for storage at rest, deriving the
 * key from `passphrase` on the spot (one scrypt run): for one-off use, such as planting a row in a
 * test or a ceremony. A server opens a `Sealer` instead. `context` names the row the blob belongs
 * to (e.g. `issuer:<id>`) and is authenticated, so a blob copied into another row will not open.
 */
export async function sealSecret(plaintext: Uint8Array, passphrase: string, context: string): Promise<Uint8Array> {
  if (passphrase.length === 0) throw new TypeError('sealSecret: the passphrase must not be empty');
  const salt = randomBytes(saltLength);
  const master = await scryptKdf(passphrase, salt, sealParams);
  const key = rowKey(master, context);
  try {
    return encrypt(magicV2, sealParams, salt, key, plaintext, context);
  } finally {
    key.fill(0);
    master.fill(0);
  }
}

/**
 * Open a blob made by `sealSecret` or a `Sealer` (either layout) with the same passphrase and
 * context, deriving its key on the spot. Every failure (wrong passphrase, wrong context,
 * tampering, truncation, a format we do not know) is the same `StoreError('unsealFailed')`:
 * telling them apart would help an attacker more than an operator, and the message never repeats
 * the passphrase.
 */
export async function unsealSecret(blob: Uint8Array, passphrase: string, context: string): Promise<Uint8Array> {
  const parsed = parseBlob(blob);
  const derived = await blobKey(parsed, (salt, params) => scryptKdf(passphrase, salt, params));
  const key = parsed.version === 1 ? derived : rowKey(derived, context);
  try {
    return decrypt(parsed, key, context);
  } finally {
    key.fill(0);
    derived.fill(0);
  }
}

/** Seals and unseals rows with one key derived per process; the authority's `KeySealer`. */
export interface Sealer {
  seal(plaintext: Uint8Array, context: string): Promise<Uint8Array>;
  unseal(blob: Uint8Array, context: string): Promise<Uint8Array>;
}

/** Where the data directory's sealing salt lives: the store's `settings`. */
export interface SealSettings {
  getSetting(key: string): Promise<string | null>;
  setSetting(key: string, value: string): Promise<void>;
}

/** Settings key of the sealing salt and KDF parameters, `scrypt:<log2N>:<r>:<p>:<salt, base64url>`. */
export const SEAL_SALT_SETTING = 'seal.kdf';

/** Most keys derived for blobs under another salt (SLS1 rows, rows from another database) kept at once. */
const FOREIGN_KEYS = 256;

function parseSaltSetting(value: string): { salt: Buffer; params: KdfParams } | null {
  const m = /^scrypt:(\d+):(\d+):(\d+):([A-Za-z0-9_-]+)$/.exec(value);
  if (m === null) return null;
  const params = { log2N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  const salt = Buffer.from(m[4]!, 'base64url');
  return paramsInBounds(params) && salt.length === saltLength ? { salt, params } : null;
}

/** The data directory's salt, made on first use; a concurrent first use by another process wins. */
async function loadSalt(settings: SealSettings): Promise<{ salt: Buffer; params: KdfParams }> {
  const stored = await settings.getSetting(SEAL_SALT_SETTING);
  if (stored !== null) {
    const parsed = parseSaltSetting(stored);
    if (parsed === null)
      throw new StoreError('unsealFailed', `the setting ${SEAL_SALT_SETTING} is not a valid sealing salt`);
    return parsed;
  }
  const { log2N, r, p } = sealParams;
  await settings.setSetting(
    SEAL_SALT_SETTING,
    `scrypt:${log2N}:${r}:${p}:${randomBytes(saltLength).toString('base64url')}`,
  );
  // Read back: if two processes raced, both continue with the value that stayed. Blobs carry their
  // salt, so a blob sealed under the losing one still opens, at the cost of one more derivation.
  return loadSalt(settings);
}

/**
 * Opens the sealer of a data directory: scrypt runs once here, over the passphrase and the
 * directory's salt, and every seal and unseal after that costs an HKDF and an AES-GCM operation.
 * Blobs under another salt (SLS1 rows, each with its own salt, or rows copied from another
 * database) derive their key once per process on first use, and that key is kept, up to
 * FOREIGN_KEYS of them: a client retrying an External Account Binding costs microseconds each time.
 */
export async function openSealer(
  passphrase: string,
  settings: SealSettings,
  opts: { kdf?: Kdf } = {},
): Promise<Sealer> {
  if (passphrase.length === 0) throw new TypeError('openSealer: the passphrase must not be empty');
  const kdf = opts.kdf ?? scryptKdf;
  const own = await loadSalt(settings);
  const master = await kdf(passphrase, own.salt, own.params);
  const foreign = new Map<string, Promise<Buffer>>();

  const derive = (salt: Uint8Array, params: KdfParams): Promise<Buffer> => {
    if (
      Buffer.from(salt).equals(own.salt) &&
      params.log2N === own.params.log2N &&
      params.r === own.params.r &&
      params.p === own.params.p
    ) {
      return Promise.resolve(master);
    }
    const id = `${params.log2N}.${params.r}.${params.p}.${Buffer.from(salt).toString('hex')}`;
    let key = foreign.get(id);
    if (key === undefined) {
      key = kdf(passphrase, salt, params);
      key.catch(() => foreign.delete(id));
      if (foreign.size >= FOREIGN_KEYS) foreign.delete(foreign.keys().next().value!);
      foreign.set(id, key);
    }
    return key;
  };

  return {
    async seal(plaintext, context) {
      const key = rowKey(master, context);
      try {
        return encrypt(magicV2, own.params, own.salt, key, plaintext, context);
      } finally {
        key.fill(0);
      }
    },
    async unseal(blob, context) {
      const parsed = parseBlob(blob);
      // Cached keys are shared, so never wiped here; a row key is made per call and wiped after.
      const derived = await blobKey(parsed, derive);
      if (parsed.version === 1) return decrypt(parsed, derived, context);
      const key = rowKey(derived, context);
      try {
        return decrypt(parsed, key, context);
      } finally {
        key.fill(0);
      }
    },
  };
}
