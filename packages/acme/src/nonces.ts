/**
 * Anti-replay nonces (RFC 8555 §6.5): 128 random bits each, accepted once, forgotten after a
 * lifetime or when the pool is full (oldest first). Kept in memory: a restart invalidates every
 * nonce, and clients recover through `badNonce`, which always carries a fresh one.
 */
export interface NoncePool {
  issue(): string;
  /** True exactly once for a nonce this pool issued and has not expired or evicted. */
  consume(nonce: string): boolean;
}

export function createNoncePool(opts: { random(n: number): Uint8Array; now(): number; lifetimeMs?: number; capacity?: number }): NoncePool {
  const lifetimeMs = opts.lifetimeMs ?? 3_600_000;
  const capacity = opts.capacity ?? 100_000;
  // Insertion order is issue order, so the first entry is always the oldest.
  const live = new Map<string, number>();
  return {
    issue() {
      const nonce = Buffer.from(opts.random(16)).toString('base64url');
      live.set(nonce, opts.now() + lifetimeMs);
      if (live.size > capacity) live.delete(live.keys().next().value!);
      return nonce;
    },
    consume(nonce) {
      const expires = live.get(nonce);
      if (expires === undefined) return false;
      live.delete(nonce);
      return expires > opts.now();
    },
  };
}
