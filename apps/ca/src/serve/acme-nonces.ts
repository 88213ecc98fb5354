import { createSharedNoncePool, sharedNonceKey, type SharedNoncePool } from '@shortleaf/acme';
import type { Clock, KeySealer } from '@shortleaf/authority';
import type { Store } from '@shortleaf/store';

/**
 * The ACME nonce pool `serve` runs with. On SQLite one process owns the database, so the ACME app
 * keeps its own pool in memory (undefined here): no database write per ACME request. On an engine
 * several instances share, nonces are sealed under one key from the database and spent there, so
 * a client behind a load balancer may send each request to another instance.
 */
export async function sharedAcmeNonces(deps: {
  store: Store;
  sealer: KeySealer;
  clock: Clock;
  random(n: number): Uint8Array;
}): Promise<SharedNoncePool | undefined> {
  if (deps.store.engine === 'sqlite') return undefined;
  const key = await sharedNonceKey({ settings: deps.store, sealer: deps.sealer, random: deps.random });
  return createSharedNoncePool({
    key,
    store: deps.store.acme,
    random: deps.random,
    now: () => deps.clock.now().getTime(),
  });
}
