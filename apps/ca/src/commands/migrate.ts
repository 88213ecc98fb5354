import { out, parse } from '../cli.js';
import { openStore } from '../data.js';

/** `shortleaf migrate --data DIR`: applies pending migrations (serve also does this at start). */
export async function migrateCommand(args: string[]): Promise<void> {
  const { values } = parse(args, { data: { type: 'string' } }, ['data']);
  const { store } = await openStore(values.data!);
  await store.close();
  out(`database in ${values.data} is up to date`);
}
