import { X509Certificate, createHash, type KeyObject } from 'node:crypto';

/**
 * The SHA-256 (hex) of a public key's canonical DER SubjectPublicKeyInfo: how lineage and blocked
 * keys name a key (Boulder's `core.KeyDigest`). The key is re-encoded rather than hashed as
 * received, so one key in two encodings (an EC point compressed and not) is one digest, and a
 * blocked key cannot come back under another encoding.
 */
export function keyDigest(key: KeyObject): string {
  return createHash('sha256')
    .update(key.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

/** The key digest of a DER certificate's subject key, or null when Node cannot read it. */
export function certificateKeyDigest(der: Uint8Array): string | null {
  try {
    return keyDigest(new X509Certificate(der).publicKey);
  } catch {
    return null;
  }
}
