import { existsSync } from 'node:fs';
import { loadActiveIssuer } from '@shortleaf/authority';
import type { Store } from '@shortleaf/store';
import { out, parse, UsageError } from '../cli.js';
import { databaseUrlProblem, redactDatabaseUrl } from '../database-url.js';
import { describeLocation, sqliteAt, storeSealer, withStore, type StoreLocation } from '../data.js';
import { recordRestore } from '../crl-floor.js';
import { acquireInstanceLock } from '../instance-lock.js';
import { dataLayout } from '../layout.js';

const USAGE =
  'usage: shortleaf store copy --from-data DIR --to URL [--password-file FILE] | shortleaf store restored --database URL --from WHAT';

/**
 * Whether the active intermediate of `store` unseals with the data passphrase: its name, or null
 * when there is no active intermediate yet (a CA between `intermediate csr` and `import`).
 */
async function unsealActive(
  location: StoreLocation,
  store: Store,
  passwordFile: string | undefined,
): Promise<string | null> {
  if ((await store.getActiveIssuer()) === null) return null;
  const { sealer } = await storeSealer(location, store, passwordFile);
  return (await loadActiveIssuer(store, sealer)).name;
}

/**
 * `shortleaf store copy --from-data DIR --to URL`: moves a SQLite CA into an empty PostgreSQL
 * database, so a CA that outgrows one machine keeps its intermediates, certificates, revocations,
 * CRL numbers, ACME accounts and audit log. Refused while a `serve` holds DIR (its instance lock,
 * held here for the whole copy, so the server cannot write meanwhile). The passphrase is checked
 * on the source before anything is written and on the copy afterwards: the same passphrase unseals
 * both. The copy itself (one transaction, verified before it commits) is the store's
 * (`@shortleaf/store/copy-from-sqlite`); DIR is left as it was.
 */
export async function storeCommand(args: string[]): Promise<void> {
  const [verb, ...rest] = args;
  if (verb === 'restored') return restoredCommand(rest);
  if (verb !== 'copy') throw new UsageError(USAGE);
  const { values } = parse(
    rest,
    { 'from-data': { type: 'string' }, to: { type: 'string' }, 'password-file': { type: 'string' } },
    ['from-data', 'to'],
  );
  const url = values.to!;
  const problem = databaseUrlProblem(url, '--to');
  if (problem !== null) throw new UsageError(problem);
  const dataDir = values['from-data']!;
  const { database } = dataLayout(dataDir);
  if (!existsSync(database)) throw new Error(`no database at ${database}: --from-data names a SQLite data directory`);
  const target: StoreLocation = { engine: 'postgres', url, dataDir };

  let lock;
  try {
    lock = acquireInstanceLock(dataDir);
  } catch (err) {
    throw new Error(`store copy refused: ${(err as Error).message}`);
  }
  try {
    const passwordFile = values['password-file'];
    // A wrong or missing passphrase stops the copy before anything is written.
    await withStore(sqliteAt(dataDir), (store) => unsealActive(sqliteAt(dataDir), store, passwordFile));
    // Loaded here only: no other verb needs the PostgreSQL driver at start.
    const { copySqliteToPostgres } = await import('@shortleaf/store/copy-from-sqlite');
    const report = await copySqliteToPostgres({ sqlitePath: database, url });
    const { unsealed, names } = await withStore(target, async (store) => ({
      unsealed: await unsealActive(target, store, passwordFile),
      names: new Map((await store.listIssuers()).map((i) => [i.id, i.name])),
    }));

    const rows = report.tables.reduce((n, t) => n + t.rows, 0);
    out(`copied ${database} into ${describeLocation(target)}, in one transaction verified before it committed:`);
    out(`  tables:       ${report.tables.length}, ${rows} rows`);
    for (const t of report.tables) out(`    ${t.table.padEnd(26)} ${t.rows}`);
    out(`  certificates: ${report.certificates}, each DER's SHA-256 equal by serial`);
    out(
      `  CRL numbers:  ${report.crlNumbers.length === 0 ? 'none published yet' : report.crlNumbers.map((c) => `${names.get(c.issuerId) ?? c.issuerId} ${c.count} (latest ${c.latest})`).join(', ')}`,
    );
    out(
      `  settings:     ${report.settings} equal${unsealed === null ? '' : `; the active intermediate ${unsealed} unseals on PostgreSQL with the same passphrase`}`,
    );
    out(
      `next: shortleaf serve --data ${dataDir} --database ${redactDatabaseUrl(url)} (as many instances as you like); ${dataDir} keeps its SQLite database as it was: serve from one of the two, never both`,
    );
  } finally {
    lock.release();
  }
}

/**
 * `shortleaf store restored --database URL --from WHAT`: run once after PostgreSQL's own restore
 * (pg_restore of a dump, a point-in-time recovery) and before any instance serves from it. Does
 * for a PostgreSQL CA what `shortleaf restore` does for SQLite's file: records the floor of the
 * next CRL number (crl-floor.ts), audited as `restore` with WHAT (the dump or the recovery target).
 */
async function restoredCommand(args: string[]): Promise<void> {
  const { values } = parse(args, { database: { type: 'string' }, from: { type: 'string' } }, ['database', 'from']);
  const url = values.database!;
  const problem = databaseUrlProblem(url, '--database');
  if (problem !== null) throw new UsageError(problem);
  const location: StoreLocation = { engine: 'postgres', url };
  const floor = await withStore(location, (store) => recordRestore(store, values.from!, new Date()));
  out(
    `recorded the restore of ${values.from} in ${describeLocation(location)}: the next CRL number will be at least ${floor}`,
  );
}
