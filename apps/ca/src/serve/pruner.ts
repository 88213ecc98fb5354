import type { SharedNoncePool } from '@shortleaf/acme';
import type { Clock, Logger } from '@shortleaf/authority';
import type { Store } from '@shortleaf/store';

/** Spent token uses and ACME nonces past their lifetime are dropped this often. */
const PRUNE_INTERVAL_MS = 10 * 60_000;

/**
 * Drops what single-use checks no longer need: spent tokens past their expiry and, where nonces
 * are shared through the database, spent nonces past their lifetime. Every instance prunes (a
 * delete of rows nobody reads is the same done once or N times); a failure, such as the database
 * being down, is logged and the next round tries again.
 */
export function startPruner(deps: {
  store: Pick<Store, 'pruneTokenUses'>;
  nonces: Pick<SharedNoncePool, 'prune'> | undefined;
  clock: Clock;
  logger: Logger;
}): { stop(): void } {
  const prune = async () => {
    await deps.store.pruneTokenUses(deps.clock.now());
    await deps.nonces?.prune();
  };
  const timer = setInterval(
    () => void prune().catch((err: Error) => deps.logger.warn('prune_failed', { error: err.message })),
    PRUNE_INTERVAL_MS,
  );
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
