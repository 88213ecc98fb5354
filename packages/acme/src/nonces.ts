import { createCipheriv, createDecipheriv } from 'node:crypto';

/**
 * Anti-replay nonces (RFC 8555 §6.5), after Boulder's `nonce` package: a nonce is a counter and
 * its issue time, encrypted under a key made when the pool is, so issuing one stores nothing. A
 * nonce is good once if it decrypts to our layout, it is not older than the lifetime, its counter
 * is above the low-water mark and it is not in the set of used counters. That set is bounded: when
 * it is full, its smallest counter leaves it and becomes the low-water mark, refusing every older
 * nonce.
 *
 * The point is that only spending nonces can retire outstanding ones, never issuing them: the old
 * pool stored every issued nonce and evicted the oldest at capacity, so an unauthenticated flood of
 * `HEAD new-nonce` pushed out every honest client's nonce and made them all fail with `badNonce`.
 * Spending a nonce takes a JWS that gets through the pipeline's nonce step, one request each.
 *
 * Kept in memory with a per-process key: a restart invalidates every nonce, and clients recover
 * through `badNonce`, which always carries a fresh one.
 */
export interface NoncePool {
  issue(): string;
  /** True exactly once for a nonce this pool issued and has not expired or retired. */
  consume(nonce: string): boolean;
}

// One AES block: counter (8 octets) | issue time in seconds (4) | zeros (4). A block cipher is a
// pseudorandom permutation, so a made-up or altered block decrypts to random octets: it passes
// only if four of them are zero (2^-32), its counter lies in the few issued so far out of 2^64,
// and its time in the last hour out of 2^32 seconds, far below 2^-64 in all. Encryption rather
// than a MAC keeps the nonce at 22 characters and does not publish how many we issue.
const BLOCK_BYTES = 16;
const NONCE_CHARS = 22;

export function createNoncePool(opts: {
  random(n: number): Uint8Array;
  now(): number;
  lifetimeMs?: number;
  capacity?: number;
}): NoncePool {
  const lifetimeMs = opts.lifetimeMs ?? 3_600_000;
  /** Most used counters remembered; the pool's memory is bounded by this, whatever is issued. */
  const capacity = opts.capacity ?? 100_000;
  const key = Buffer.from(opts.random(32));
  const block = (plain: Buffer, decrypt: boolean): Buffer => {
    const cipher = decrypt ? createDecipheriv('aes-256-ecb', key, null) : createCipheriv('aes-256-ecb', key, null);
    cipher.setAutoPadding(false);
    return Buffer.concat([cipher.update(plain), cipher.final()]);
  };

  let latest = 0;
  let lowWater = 0;
  const used = new Set<number>();
  const heap = new MinHeap();

  return {
    issue() {
      latest += 1;
      const plain = Buffer.alloc(BLOCK_BYTES);
      plain.writeUInt32BE(Math.floor(latest / 2 ** 32), 0);
      plain.writeUInt32BE(latest % 2 ** 32, 4);
      plain.writeUInt32BE(Math.floor(opts.now() / 1000) % 2 ** 32, 8);
      return block(plain, false).toString('base64url');
    },
    consume(nonce) {
      if (nonce.length !== NONCE_CHARS) return false;
      const sealed = Buffer.from(nonce, 'base64url');
      // Exactly our encoding: no other characters, and no spare low bits set in the last one.
      if (sealed.length !== BLOCK_BYTES || sealed.toString('base64url') !== nonce) return false;
      const plain = block(sealed, true);
      if (plain.readUInt32BE(12) !== 0) return false;
      const counter = plain.readUInt32BE(0) * 2 ** 32 + plain.readUInt32BE(4);
      const issuedAt = plain.readUInt32BE(8) * 1000;
      if (counter <= lowWater || counter > latest || used.has(counter)) return false;
      if (issuedAt + lifetimeMs <= opts.now()) return false;
      used.add(counter);
      heap.push(counter);
      if (used.size > capacity) {
        const oldest = heap.pop()!;
        used.delete(oldest);
        lowWater = oldest;
      }
      return true;
    },
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
