import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import pg from 'pg';
import { StoreError } from '../contracts/errors.js';
import { SqliteStore } from '../sqlite-store.js';
import { toStorageError } from './pg-errors.js';
import { PostgresStore } from './pg-store.js';

// `shortleaf store copy`: a SQLite CA moved into an empty PostgreSQL database, losing nothing.
// Both schemas carry the same tables and columns (migrations/postgres/0001_core.sql), so each
// SQLite row becomes the same row in PostgreSQL, value by value: ISO text casts to timestamptz,
// 0/1 to boolean, BLOB to bytea. Rows go in rowid order, so the `seq` identity PostgreSQL fills on
// insert keeps SQLite's insertion order. The whole copy is one PostgreSQL transaction, checked
// before it commits: all of it arrives, verified, or none of it does.

/** Tables each engine keeps for itself: never copied, never counted. */
const ENGINE_TABLES = new Set(['schema_migrations']);

/** PostgreSQL takes at most 65535 parameters per statement; stay well below with a row cap too. */
const MAX_PARAMS = 60_000;
const MAX_ROWS_PER_INSERT = 500;

/** What was copied and what the check before commit compared. */
export interface SqliteCopyReport {
  /** Every copied table in the order copied (foreign keys first), with its row count on both sides. */
  tables: Array<{ table: string; rows: number }>;
  /** Certificates whose DER (SHA-256, by serial) is the same on both sides; reservations have none. */
  certificates: number;
  /** Per intermediate: how many CRL numbers it published and the latest (the same set on both sides). */
  crlNumbers: Array<{ issuerId: string; count: number; latest: string }>;
  /** Settings (the sealing salt among them) equal on both sides, so the same passphrase unseals. */
  settings: number;
}

interface SourceTable {
  name: string;
  columns: string[];
  /** Tables this one references (itself excluded). */
  references: Set<string>;
  /** ORDER BY clause reading rows in insertion order. */
  order: string;
}

const quote = (identifier: string): string => `"${identifier.replaceAll('"', '""')}"`;

/**
 * Copies the SQLite database at `sqlitePath` into the empty PostgreSQL database at `url`. Both are
 * first brought up to date (opening migrates). The target is refused with `conflict`, nothing
 * written, when any of its tables has a row. Inside one transaction every table is copied in
 * foreign-key order (the two references between ACME accounts and EAB keys are deferred to
 * commit), identity sequences are moved past the copied ids, and the result is compared with the
 * source: row counts per table, each certificate's DER hash, each intermediate's CRL numbers, and
 * every setting. A difference rolls everything back. The source is read in one snapshot; keeping
 * writers away from it (`serve`'s instance lock) is the caller's part.
 */
export async function copySqliteToPostgres(opts: {
  sqlitePath: string;
  url: string;
  migrationsDir?: string | URL;
}): Promise<SqliteCopyReport> {
  // Opening would create an empty database: a missing source is a mistake, not an empty CA.
  if (!existsSync(opts.sqlitePath)) throw new StoreError('notFound', `no SQLite database at ${opts.sqlitePath}`);
  await (await SqliteStore.open(opts.sqlitePath)).close();
  await (
    await PostgresStore.open(opts.url, {
      poolSize: 1,
      ...(opts.migrationsDir === undefined ? {} : { migrationsDir: opts.migrationsDir }),
    })
  ).close();

  const source = new Database(opts.sqlitePath, { readonly: true, fileMustExist: true });
  const target = new pg.Client({ connectionString: opts.url, connectionTimeoutMillis: 5000 });
  try {
    // One read transaction: every table and every check below sees the same snapshot.
    source.exec('BEGIN');
    const tables = copyOrder(sourceTables(source));
    try {
      await target.connect();
    } catch (err) {
      throw toStorageError(err);
    }
    try {
      await target.query('BEGIN');
      const report = await copyInTransaction(source, target, tables);
      await target.query('COMMIT');
      return report;
    } catch (err) {
      await target.query('ROLLBACK').catch(() => undefined);
      throw toStorageError(err);
    }
  } finally {
    source.close();
    await target.end().catch(() => undefined);
  }
}

async function copyInTransaction(
  source: Database.Database,
  target: pg.Client,
  tables: SourceTable[],
): Promise<SqliteCopyReport> {
  await target.query('SET CONSTRAINTS ALL DEFERRED');
  const targetColumns = await columnsOf(target);
  checkSchemasMatch(tables, targetColumns);
  const targetTables = [...targetColumns.keys()];
  // No other process writes while we check and fill (instances, `init`); readers go on.
  await target.query(`LOCK TABLE ${targetTables.map(quote).join(', ')} IN EXCLUSIVE MODE`);
  await refuseNonEmpty(target, targetTables);

  const copied: SqliteCopyReport['tables'] = [];
  for (const table of tables) {
    const identity = targetColumns.get(table.name)!;
    const rows = await copyTable(source, target, table, identity);
    copied.push({ table: table.name, rows });
  }
  await advanceIdentities(target, tables, targetColumns);
  return verify(source, target, copied);
}

/** The source's tables in creation order, with columns, references and insertion order. */
function sourceTables(db: Database.Database): SourceTable[] {
  const rows = db
    .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid")
    .all() as Array<{ name: string; sql: string }>;
  return rows
    .filter((r) => !ENGINE_TABLES.has(r.name))
    .map((r) => {
      const info = db.prepare(`PRAGMA table_info(${quote(r.name)})`).all() as Array<{ name: string; pk: number }>;
      const fks = db.prepare(`PRAGMA foreign_key_list(${quote(r.name)})`).all() as Array<{ table: string }>;
      const primaryKey = info
        .filter((c) => c.pk > 0)
        .sort((a, b) => a.pk - b.pk)
        .map((c) => quote(c.name));
      return {
        name: r.name,
        columns: info.map((c) => c.name),
        references: new Set(fks.map((f) => f.table).filter((t) => t !== r.name)),
        order: /without\s+rowid/i.test(r.sql) ? primaryKey.join(', ') : 'rowid',
      };
    });
}

/**
 * Referenced tables before the tables that reference them. A cycle (ACME accounts and EAB keys
 * name each other) is broken in creation order: PostgreSQL checks those references at commit.
 * A table's references to itself (a renewal's `renewed_from`) hold in rowid order.
 */
function copyOrder(tables: SourceTable[]): SourceTable[] {
  const done = new Set<string>();
  const order: SourceTable[] = [];
  while (order.length < tables.length) {
    const left = tables.filter((t) => !done.has(t.name));
    const ready = left.find((t) => [...t.references].every((r) => done.has(r))) ?? left[0]!;
    done.add(ready.name);
    order.push(ready);
  }
  return order;
}

interface TargetColumn {
  name: string;
  identity: 'ALWAYS' | 'BY DEFAULT' | null;
}

/** The target's tables (engine tables left out) and their columns. */
async function columnsOf(target: pg.Client): Promise<Map<string, TargetColumn[]>> {
  const { rows } = await target.query<{ table_name: string; column_name: string; identity_generation: string | null }>(
    `SELECT c.table_name, c.column_name, c.identity_generation
       FROM information_schema.columns c
       JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
      WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
      ORDER BY c.table_name, c.ordinal_position`,
  );
  const tables = new Map<string, TargetColumn[]>();
  for (const r of rows) {
    if (ENGINE_TABLES.has(r.table_name)) continue;
    const columns = tables.get(r.table_name) ?? [];
    columns.push({ name: r.column_name, identity: r.identity_generation as TargetColumn['identity'] });
    tables.set(r.table_name, columns);
  }
  return tables;
}

/** Every source column must have a home: a difference is a schema this version did not expect. */
function checkSchemasMatch(tables: SourceTable[], target: Map<string, TargetColumn[]>): void {
  for (const table of tables) {
    const columns = target.get(table.name);
    if (columns === undefined)
      throw new StoreError('migrationFailed', `the PostgreSQL schema has no table ${table.name}; nothing was copied`);
    const missing = table.columns.filter((c) => !columns.some((t) => t.name === c));
    if (missing.length > 0)
      throw new StoreError(
        'migrationFailed',
        `the PostgreSQL table ${table.name} has no column ${missing.join(', ')}; nothing was copied`,
      );
  }
}

async function refuseNonEmpty(target: pg.Client, tables: string[]): Promise<void> {
  const found: string[] = [];
  for (const table of tables) {
    const { rows } = await target.query<{ n: string }>(`SELECT count(*) AS n FROM ${quote(table)}`);
    if (rows[0]!.n !== '0') found.push(`${table} ${rows[0]!.n}`);
  }
  if (found.length > 0)
    throw new StoreError(
      'conflict',
      `the target database is not empty (rows already in ${found.join(', ')}); store copy moves a CA into an empty database only, and wrote nothing`,
    );
}

/** Inserts one table's rows in insertion order, several rows per statement; returns how many. */
async function copyTable(
  source: Database.Database,
  target: pg.Client,
  table: SourceTable,
  targetColumns: TargetColumn[],
): Promise<number> {
  const columns = table.columns;
  const overriding = targetColumns.some((c) => c.identity === 'ALWAYS' && columns.includes(c.name))
    ? ' OVERRIDING SYSTEM VALUE'
    : '';
  const perInsert = Math.max(1, Math.min(MAX_ROWS_PER_INSERT, Math.floor(MAX_PARAMS / columns.length)));
  const head = `INSERT INTO ${quote(table.name)} (${columns.map(quote).join(', ')})${overriding} VALUES `;
  // Integers as BigInt: a CRL number or an id past 2^53 arrives exact.
  const read = source
    .prepare(`SELECT ${columns.map(quote).join(', ')} FROM ${quote(table.name)} ORDER BY ${table.order}`)
    .raw(true)
    .safeIntegers(true);
  let batch: unknown[][] = [];
  let count = 0;
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const values = batch.map((_, i) => `(${columns.map((__, j) => `$${i * columns.length + j + 1}`).join(', ')})`);
    await target.query(head + values.join(', '), batch.flat());
    count += batch.length;
    batch = [];
  };
  for (const row of read.iterate() as IterableIterator<unknown[]>) {
    batch.push(row);
    if (batch.length >= perInsert) await flush();
  }
  await flush();
  return count;
}

/**
 * Moves every identity sequence of a copied table past the largest value now in its column, or
 * the next row appended (an audit entry, whose id was copied) would collide with a copied one.
 */
async function advanceIdentities(
  target: pg.Client,
  tables: SourceTable[],
  targetColumns: Map<string, TargetColumn[]>,
): Promise<void> {
  for (const table of tables) {
    for (const column of targetColumns.get(table.name)!.filter((c) => c.identity !== null)) {
      await target.query(
        `SELECT setval(pg_get_serial_sequence($1, $2), max_value)
           FROM (SELECT max(${quote(column.name)}) AS max_value FROM ${quote(table.name)}) m
          WHERE max_value IS NOT NULL`,
        [quote(table.name), column.name],
      );
    }
  }
}

/** Compares the copy with the source inside the transaction; a difference throws and rolls back. */
async function verify(
  source: Database.Database,
  target: pg.Client,
  copied: SqliteCopyReport['tables'],
): Promise<SqliteCopyReport> {
  const problems: string[] = [];
  for (const { table, rows } of copied) {
    const sourceRows = Number((source.prepare(`SELECT count(*) AS n FROM ${quote(table)}`).get() as { n: number }).n);
    const { rows: t } = await target.query<{ n: string }>(`SELECT count(*) AS n FROM ${quote(table)}`);
    if (sourceRows !== rows || Number(t[0]!.n) !== sourceRows)
      problems.push(`${table}: ${sourceRows} rows in SQLite, ${t[0]!.n} in PostgreSQL`);
  }

  const sourceHashes = new Map<string, string>();
  for (const row of source
    .prepare('SELECT serial, der FROM certificates WHERE der IS NOT NULL')
    .iterate() as IterableIterator<{
    serial: string;
    der: Buffer;
  }>)
    sourceHashes.set(row.serial, createHash('sha256').update(row.der).digest('hex'));
  const { rows: targetHashes } = await target.query<{ serial: string; hash: string }>(
    `SELECT serial, encode(sha256(der), 'hex') AS hash FROM certificates WHERE der IS NOT NULL`,
  );
  const differing = targetHashes.filter((r) => sourceHashes.get(r.serial) !== r.hash).map((r) => r.serial);
  if (differing.length > 0 || targetHashes.length !== sourceHashes.size)
    problems.push(
      `certificates: ${sourceHashes.size} DER in SQLite, ${targetHashes.length} in PostgreSQL, ${differing.length} differing (${differing.slice(0, 3).join(', ')})`,
    );

  const sourceCrls = (
    source.prepare('SELECT issuer_id, number FROM crls ORDER BY issuer_id, number').safeIntegers(true).all() as Array<{
      issuer_id: string;
      number: bigint;
    }>
  ).map((r) => `${r.issuer_id}#${r.number}`);
  const { rows: targetCrlRows } = await target.query<{ issuer_id: string; number: string }>(
    'SELECT issuer_id, number FROM crls ORDER BY issuer_id COLLATE "C", number',
  );
  const targetCrls = targetCrlRows.map((r) => `${r.issuer_id}#${r.number}`);
  if (sourceCrls.join('\n') !== targetCrls.join('\n')) problems.push('crls: the CRL numbers differ');

  const sourceSettings = source.prepare('SELECT key, value FROM settings ORDER BY key').all() as Array<{
    key: string;
    value: string;
  }>;
  const { rows: targetSettings } = await target.query<{ key: string; value: string }>(
    'SELECT key, value FROM settings ORDER BY key COLLATE "C"',
  );
  if (JSON.stringify(sourceSettings) !== JSON.stringify(targetSettings))
    problems.push(
      `settings: ${sourceSettings.map((s) => s.key).join(', ')} in SQLite, ${targetSettings.map((s) => s.key).join(', ')} in PostgreSQL (or values differ)`,
    );

  if (problems.length > 0)
    throw new Error(`the copy does not match the source, so nothing was kept: ${problems.join('; ')}`);

  const crlNumbers = new Map<string, { count: number; latest: string }>();
  for (const r of targetCrlRows) {
    const entry = crlNumbers.get(r.issuer_id) ?? { count: 0, latest: r.number };
    entry.count += 1;
    if (BigInt(r.number) > BigInt(entry.latest)) entry.latest = r.number;
    crlNumbers.set(r.issuer_id, entry);
  }
  return {
    tables: copied,
    certificates: targetHashes.length,
    crlNumbers: [...crlNumbers].map(([issuerId, e]) => ({ issuerId, ...e })),
    settings: targetSettings.length,
  };
}
