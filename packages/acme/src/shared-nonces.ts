import type { KeySealer } from '@shortleaf/authority';
import { nonceCipher, type NoncePool } from './nonces.js';

/**
 * Where several instances share one database (PostgreSQL), a nonce issued by one must be good
 * once at any of them (RFC 8555 §6.5 through a load balancer). Boulder's shape is kept: issuing
 * stores nothing, so a flood of `HEAD new-nonce` writes nothing, and only a nonce that opens under
 * the shared key and is within its lifetime costs a write (`spendNonce`, true once across every
 * process). A counter cannot be compared across instances, so the block carries a random 64-bit
 * id instead: a forged block still needs the four zero octets (2^-32) and a time in the last hour
 * (about 2^-20) before it reaches the database.
 */
export interface SharedNoncePool extends NoncePool {
  /** Drops spent nonces that no instance can accept any more; returns how many. */
  prune(): Promise<number>;
}

/** What the shared pool needs from the store: its `acme` engine. */
export interface SpentNonceStore {
  spendNonce(nonce: string, expiresAt: Date): Promise<boolean>;
  pruneSpentNonces(now: Date): Promise<number>;
}

/** What the shared key needs from the store: a setting only its first writer sets. */
export interface NonceKeySettings {
  settingOnce(key: string, value: string): Promise<string>;
}

/** The setting holding the shared nonce key, sealed like every other key at rest. */
export const NONCE_KEY_SETTING = 'acme.nonce_key';
const NONCE_KEY_SEAL_CONTEXT = 'acme-nonce-key';

/**
 * How far apart instances' clocks may be. A nonce dated this far in an instance's future is still
 * taken (another instance issued it), and a spent nonce is kept this long past its lifetime, so an
 * instance whose clock is behind cannot accept it again after another pruned it.
 */
export const NONCE_CLOCK_SKEW_MS = 60_000;

/**
 * The key every instance seals nonces under: the first instance to start makes it and stores it
 * sealed (so neither the database nor a statement log holds it in the clear), the others unseal
 * that one. The passphrase that unseals the intermediate unseals it.
 */
export async function sharedNonceKey(deps: {
  settings: NonceKeySettings;
  sealer: KeySealer;
  random(n: number): Uint8Array;
}): Promise<Uint8Array> {
  const mine = await deps.sealer.seal(deps.random(32), NONCE_KEY_SEAL_CONTEXT);
  const stored = await deps.settings.settingOnce(NONCE_KEY_SETTING, Buffer.from(mine).toString('base64'));
  return deps.sealer.unseal(new Uint8Array(Buffer.from(stored, 'base64')), NONCE_KEY_SEAL_CONTEXT);
}

/** The nonce pool of instances sharing one database, spending through the store. */
export function createSharedNoncePool(opts: {
  key: Uint8Array;
  store: SpentNonceStore;
  random(n: number): Uint8Array;
  now(): number;
  lifetimeMs?: number;
}): SharedNoncePool {
  const lifetimeMs = opts.lifetimeMs ?? 3_600_000;
  const cipher = nonceCipher(opts.key);
  return {
    issue: () => cipher.seal(Buffer.from(opts.random(8)).readBigUInt64BE(0), opts.now()),
    async consume(nonce) {
      const opened = cipher.open(nonce);
      if (opened === null) return false;
      const now = opts.now();
      const expiresAt = opened.issuedAtMs + lifetimeMs;
      if (expiresAt <= now || opened.issuedAtMs > now + NONCE_CLOCK_SKEW_MS) return false;
      return opts.store.spendNonce(nonce, new Date(expiresAt));
    },
    prune: () => opts.store.pruneSpentNonces(new Date(opts.now() - NONCE_CLOCK_SKEW_MS)),
  };
}
