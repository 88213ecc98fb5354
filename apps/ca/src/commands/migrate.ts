import { out, parse } from '../cli.js';
import { describeLocation, LOCATION_FLAGS, storeLocation, withStore } from '../data.js';

/**
 * `shortleaf migrate --data DIR | --database URL`: applies pending migrations (opening a store
 * migrates it; serve does this at start too, and on PostgreSQL the engine holds a lock so
 * instances starting together apply each migration once), then says how many are on record.
 */
export async function migrateCommand(args: string[]): Promise<void> {
  const { values } = parse(args, LOCATION_FLAGS);
  const location = storeLocation(values);
  const recorded = await withStore(location, async (store) => (await store.counts()).schema_migrations);
  out(`database in ${describeLocation(location)} is up to date: ${recorded ?? 0} migrations on record`);
}
