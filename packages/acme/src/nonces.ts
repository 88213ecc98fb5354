import { createCipheriv, createDecipheriv } from 'node:crypto';

/**
 * Anti-replay nonces (RFC 8555 §6.5), after Boulder's `nonce` package: a nonce is an AES block
 * holding a counter (or a random id) and its issue time, so issuing one stores nothing. Only
 * spending a nonce can retire outstanding ones, never issuing them: the old pool stored every
 * issued nonce and evicted the oldest at capacity, so an unauthenticated flood of `HEAD new-nonce`
 * pushed out every honest client's nonce and made them all fail with `badNonce`. Spending a nonce
 * takes a JWS that gets through the pipeline's nonce step, one request each.
 *
 * Two pools keep that shape: `createNoncePool` (here) remembers spent nonces in memory, for one
 * process on SQLite; `createSharedNoncePool` (shared-nonces.ts) records them in the database, for
 * several instances on PostgreSQL.
 */
export interface NoncePool {
  /** A fresh nonce; never touches storage, so it works while the database is down. */
  issue(): string;
  /**
   * True exactly once for a nonce this pool (or a pool sharing its key and store) issued and has
   * not expired or retired. Rejects when the store that records spent nonces is unavailable.
   */
  consume(nonce: string): Promise<boolean>;
}

// One AES block: id (8 octets) | issue time in seconds (4) | zeros (4). A block cipher is a
// pseudorandom permutation, so a made-up or altered block decrypts to random octets: it passes
// only if four of them are zero (2^-32) and its time lies in the last hour out of 2^32 seconds
// (about 2^-20), and then its id must also be one the pool accepts. Encryption rather than a MAC
// keeps the nonce at 22 characters and does not publish how many we issue.
const BLOCK_BYTES = 16;
const NONCE_CHARS = 22;

/** What a nonce carries once opened: its id (a counter or a random value) and when it was issued. */
export interface OpenedNonce {
  id: bigint;
  issuedAtMs: number;
}

/** Seals and opens nonce blocks under one AES-256 key. */
export function nonceCipher(key: Uint8Array) {
  if (key.length !== 32) throw new RangeError('a nonce key is 32 bytes (AES-256)');
  const secret = Buffer.from(key);
  const block = (input: Buffer, decrypt: boolean): Buffer => {
    const cipher = decrypt
      ? createDecipheriv('aes-256-ecb', secret, null)
      : createCipheriv('aes-256-ecb', secret, null);
    cipher.setAutoPadding(false);
    return Buffer.concat([cipher.update(input), cipher.final()]);
  };
  return {
    seal(id: bigint, nowMs: number): string {
      const plain = Buffer.alloc(BLOCK_BYTES);
      plain.writeBigUInt64BE(id, 0);
      plain.writeUInt32BE(Math.floor(nowMs / 1000) % 2 ** 32, 8);
      return block(plain, false).toString('base64url');
    },
    /** The nonce's contents, or null for anything that is not exactly a block sealed under this key. */
    open(nonce: string): OpenedNonce | null {
      if (nonce.length !== NONCE_CHARS) return null;
      const sealed = Buffer.from(nonce, 'base64url');
      // Exactly our encoding: no other characters, and no spare low bits set in the last one.
      if (sealed.length !== BLOCK_BYTES || sealed.toString('base64url') !== nonce) return null;
      const plain = block(sealed, true);
      if (plain.readUInt32BE(12) !== 0) return null;
      return { id: plain.readBigUInt64BE(0), issuedAtMs: plain.readUInt32BE(8) * 1000 };
    },
  };
}

/**
 * The pool of one process (SQLite: `serve.lock` keeps it alone): a counter sealed under a key made
 * when the pool is, and the set of spent counters in memory. A nonce is good once if its counter is
 * above the low-water mark, at most the latest issued, and not spent. The spent set is bounded:
 * when it is full, its smallest counter leaves it and becomes the low-water mark, refusing every
 * older nonce. A restart invalidates every nonce; clients recover through `badNonce`, which always
 * carries a fresh one. No database write per ACME request.
 */
export function createNoncePool(opts: {
  random(n: number): Uint8Array;
  now(): number;
  lifetimeMs?: number;
  capacity?: number;
}): NoncePool {
  const lifetimeMs = opts.lifetimeMs ?? 3_600_000;
  /** Most used counters remembered; the pool's memory is bounded by this, whatever is issued. */
  const capacity = opts.capacity ?? 100_000;
  const cipher = nonceCipher(opts.random(32));

  let latest = 0;
  let lowWater = 0;
  const used = new Set<number>();
  const heap = new MinHeap();

  const spend = (nonce: string): boolean => {
    const opened = cipher.open(nonce);
    if (opened === null || opened.id > BigInt(Number.MAX_SAFE_INTEGER)) return false;
    const counter = Number(opened.id);
    if (counter <= lowWater || counter > latest || used.has(counter)) return false;
    if (opened.issuedAtMs + lifetimeMs <= opts.now()) return false;
    used.add(counter);
    heap.push(counter);
    if (used.size > capacity) {
      const oldest = heap.pop()!;
      used.delete(oldest);
      lowWater = oldest;
    }
    return true;
  };

  return {
    issue() {
      latest += 1;
      return cipher.seal(BigInt(latest), opts.now());
    },
    consume: (nonce) => Promise.resolve(spend(nonce)),
  };
}

/** A binary min-heap of counters: the used set's smallest member in O(log n). */
class MinHeap {
  private readonly items: number[] = [];

  push(value: number): void {
    const a = this.items;
    a.push(value);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent]! <= a[i]!) break;
      [a[parent], a[i]] = [a[i]!, a[parent]!];
      i = parent;
    }
  }

  pop(): number | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let min = i;
        if (l < a.length && a[l]! < a[min]!) min = l;
        if (r < a.length && a[r]! < a[min]!) min = r;
        if (min === i) break;
        [a[min], a[i]] = [a[i]!, a[min]!];
        i = min;
      }
    }
    return top;
  }
}
