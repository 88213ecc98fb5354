import { Buffer } from 'node:buffer';
import { minimalOcspRequest, type CertId } from '@shortleaf/pki';

/** A pre-signed answer for one CertID (RFC 5019 §2.2: no nonce, served until it is re-signed). */
export interface CachedResponse {
  certId: CertId;
  serial: string;
  body: Uint8Array;
  outcome: 'good' | 'revoked';
  thisUpdate: Date;
  nextUpdate: Date;
  etag: string;
}

/** Default byte budget of one responder's pre-signed answers (about 44,000 of them). */
export const DEFAULT_OCSP_CACHE_BYTES = 128 * 1024 * 1024;

// What an entry costs besides the bytes counted one by one: the entry and CertID objects, four
// ArrayBuffers and their views, two Dates, the strings' headers, the Map and Set slots. Measured
// on Node 20 (40,000 entries, heap and external memory after a full collection): about 2,950
// bytes an entry in all, of which this is the part not counted below, rounded up so that the
// budget errs on the safe side.
const ENTRY_OVERHEAD_BYTES = 1600;

// A minimal request for one SHA-512 CertID with a 20-octet serial is 185 bytes; anything longer
// cannot be a key, and is not turned into a string just to miss.
const MAX_KEY_BYTES = 192;

/**
 * The cache key of a request's bytes: the bytes themselves when they could be a minimal
 * one-CertID request (`minimalOcspRequest`), else null. Keys made from a parsed CertID
 * (`keyOf`) are the same strings, so a client sending exactly the minimal form is answered with
 * one Map lookup and no parsing, and any other form of the same question parses to the same key.
 */
export function requestKey(der: Uint8Array): string | null {
  if (der.byteLength > MAX_KEY_BYTES) return null;
  return Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('latin1');
}

/**
 * The key of a CertID: a function of its bytes alone (hash algorithm, issuer name and key
 * hashes, serial), never of what else a request carried (requestorName, extensions, a
 * signature), so distinct requests for one CertID share one entry.
 */
export function keyOf(certId: CertId): string {
  return Buffer.from(minimalOcspRequest(certId)).toString('latin1');
}

function sizeOf(key: string, e: CachedResponse): number {
  // The key is a one-byte (latin1) string; the CertID's hashes are copies of parts of its DER.
  return (
    ENTRY_OVERHEAD_BYTES +
    key.length +
    e.body.byteLength +
    2 * e.certId.der.byteLength +
    2 * e.serial.length +
    e.etag.length
  );
}

/**
 * The responder's pre-signed answers, bounded both in entries and in bytes: whichever limit is
 * reached first evicts the least recently signed answers. Only answers for serials we issued get
 * here (one per CertID form asked), so a client cannot grow it with requests it invents, and the
 * byte bound holds even against clients asking about every certificate in every hash form.
 */
export function createOcspCache(limits: { maxEntries: number; maxBytes: number }) {
  const entries = new Map<string, { entry: CachedResponse; bytes: number }>();
  const bySerial = new Map<string, Set<string>>();
  let bytes = 0;

  function remove(key: string): void {
    const found = entries.get(key);
    if (found === undefined) return;
    entries.delete(key);
    bytes -= found.bytes;
    const keys = bySerial.get(found.entry.serial);
    keys?.delete(key);
    if (keys?.size === 0) bySerial.delete(found.entry.serial);
  }

  return {
    get: (key: string): CachedResponse | undefined => entries.get(key)?.entry,

    /** Stores an answer (replacing the key's previous one); false when it alone exceeds the budget. */
    set(key: string, entry: CachedResponse): boolean {
      const size = sizeOf(key, entry);
      remove(key); // re-inserted at the end: eviction takes the least recently signed
      if (size > limits.maxBytes) return false;
      while (entries.size > 0 && (entries.size >= limits.maxEntries || bytes + size > limits.maxBytes))
        remove(entries.keys().next().value!);
      entries.set(key, { entry, bytes: size });
      bytes += size;
      let keys = bySerial.get(entry.serial);
      if (keys === undefined) bySerial.set(entry.serial, (keys = new Set()));
      keys.add(key);
      return true;
    },

    /** Drops a serial's answers and returns the CertIDs they answered. */
    dropSerial(serial: string): CertId[] {
      const keys = [...(bySerial.get(serial) ?? [])];
      const certIds = keys.map((k) => entries.get(k)!.entry.certId);
      for (const k of keys) remove(k);
      return certIds;
    },

    values: (): CachedResponse[] => [...entries.values()].map((v) => v.entry),

    clear(): void {
      entries.clear();
      bySerial.clear();
      bytes = 0;
    },

    stats: () => ({ entries: entries.size, bytes }),
  };
}

export type OcspCache = ReturnType<typeof createOcspCache>;
