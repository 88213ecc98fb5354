import type { Store } from '@shortleaf/store';
import { cliOperator } from './config.js';
import { CRL_NUMBER_FLOOR_SETTING } from './layout.js';

/**
 * Records, in a database just restored from a backup, the lowest number its next CRL may take: the
 * restore time in microseconds since 1970 (about 1.8 × 10^15), or the floor already there if higher.
 * The original may have published CRLs after the backup under numbers the restored database does not
 * know; one number naming two different CRLs would let a verifier keep the stale one. A CA's
 * numbers grow by one per CRL, far slower than one per microsecond, so the floor is above them all
 * while the clock is right. Audited as `restore`; returns the floor kept.
 */
export async function recordRestore(store: Store, from: string, now: Date): Promise<bigint> {
  const floor = BigInt(now.getTime()) * 1000n;
  const previous = await store.getSetting(CRL_NUMBER_FLOOR_SETTING);
  const kept = previous !== null && /^\d+$/.test(previous) && BigInt(previous) > floor ? BigInt(previous) : floor;
  await store.setSetting(CRL_NUMBER_FLOOR_SETTING, kept.toString());
  await store.appendAudit({
    at: now,
    action: 'restore',
    actor: `operator:${cliOperator().name}`,
    serial: null,
    detail: { from, crlNumberFloor: kept.toString() },
  });
  return kept;
}
