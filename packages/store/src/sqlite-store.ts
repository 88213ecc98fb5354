import Database from 'better-sqlite3';
import { RepositoryStore } from './repository-store.js';
import { AcmeRepository } from './acme-repository.js';
import { AuditRepository, insertAudit } from './audit-repository.js';
import { CertificateRepository } from './certificate-repository.js';
import type { Store } from './contracts/store.js';
import { StoreError } from './errors.js';
import { IssuerRepository } from './issuer-repository.js';
import { applyMigrations, loadMigrations, pendingMigrations } from './migrate.js';
import { ProvisionerRepository } from './provisioner-repository.js';
import type { OpenOptions } from './records.js';
import { RevocationRepository } from './revocation-repository.js';
import { SettingsRepository } from './settings-repository.js';
import { backfillKeyDigests } from './sqlite-backfill.js';
import type { RepositoryContext } from './sqlite-context.js';
import { toStorageError } from './sqlite-errors.js';
import { SqliteCoordination } from './sqlite-coordination.js';
import { backupDatabase, prepareDatabaseFile, verifyDatabaseFile } from './sqlite-file.js';

const busyTimeoutMs = 5000;

/**
 * What the repositories share on one connection: statements compiled once per SQL text and
 * reused (issuance is the hot path), the guard that turns disk-level SQLite failures into
 * `storageUnavailable` (sync inside, so a throw becomes the calling async method's rejection),
 * the audit insert, and the in-process notices.
 */
function sqliteContext(db: Database.Database, coordination: SqliteCoordination): RepositoryContext {
  const statements = new Map<string, Database.Statement>();
  const stmt = (sql: string): Database.Statement => {
    let statement = statements.get(sql);
    if (statement === undefined) {
      statement = db.prepare(sql);
      statements.set(sql, statement);
    }
    return statement;
  };
  return {
    db,
    stmt,
    guard: <T>(operation: () => T): T => {
      try {
        return operation();
      } catch (err) {
        throw toStorageError(err);
      }
    },
    insertAudit: (e) => insertAudit(stmt, e),
    notify: (topic) => coordination.notify(topic),
  };
}

/**
 * Shortleaf's storage on one SQLite file: the SQLite engine of the `Store` contract
 * (contracts/store.ts). Every method is async although better-sqlite3 is synchronous, so the
 * authority is written against an interface a PostgreSQL engine can also satisfy. Each method is
 * one transaction at most; failures of the disk come out as `StoreError('storageUnavailable')`,
 * duplicates and missing rows as their own codes. The work is done by one repository per concern
 * on this one connection (issuers and roots, provisioners, certificates, audit, settings,
 * revocations, ACME); this class opens the file and hands each its part.
 */
export class SqliteStore extends RepositoryStore {
  readonly engine = 'sqlite';
  /** Revocations, CRLs, root CRLs and root-delegated OCSP signers, on this same connection. */
  declare readonly revocations: RevocationRepository;
  /** ACME accounts, EAB keys, orders, authorizations and challenges, on this same connection. */
  declare readonly acme: AcmeRepository;
  /** Locks and notices within this process: one process owns a SQLite database. */
  declare readonly coordination: SqliteCoordination;

  private constructor(
    private readonly db: Database.Database,
    private readonly context: RepositoryContext,
    coordination: SqliteCoordination,
  ) {
    super({
      issuers: new IssuerRepository(context),
      provisioners: new ProvisionerRepository(context),
      certificates: new CertificateRepository(context),
      audit: new AuditRepository(context),
      settings: new SettingsRepository(context),
      revocations: new RevocationRepository(context),
      acme: new AcmeRepository(context),
      coordination,
    });
  }

  /**
   * Open (creating if needed) the database at `path` and bring its schema up to date. Pragmas:
   * WAL so readers do not block the writer, `synchronous=FULL` because a certificate must be on
   * disk before any client sees it, foreign keys on, and a 5 s busy timeout. A new parent folder
   * is created 0700 and the file is kept 0600. `:memory:` is accepted for quick tests.
   */
  static async open(path: string, opts: OpenOptions = {}): Promise<SqliteStore> {
    const readonly = opts.readonly ?? false;
    const migrations = loadMigrations(opts.migrationsDir);
    let db: Database.Database;
    try {
      if (path !== ':memory:' && !readonly) prepareDatabaseFile(path);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      throw new StoreError('storageUnavailable', `cannot prepare the database file ${path}: ${reason}`, { cause: err });
    }
    try {
      db = new Database(path, { readonly, fileMustExist: readonly, timeout: busyTimeoutMs });
    } catch (err) {
      throw toStorageError(err);
    }
    try {
      db.pragma(`busy_timeout = ${busyTimeoutMs}`);
      if (!readonly) db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      if (readonly) {
        const pending = pendingMigrations(db, migrations);
        if (pending.length > 0) {
          throw new StoreError(
            'migrationFailed',
            `the database needs migration ${pending.map((m) => m.name).join(', ')} but was opened read-only; open it read-write once`,
          );
        }
      } else {
        applyMigrations(db, migrations);
        backfillKeyDigests(db);
      }
    } catch (err) {
      db.close();
      throw toStorageError(err);
    }
    const coordination = new SqliteCoordination();
    return new SqliteStore(db, sqliteContext(db, coordination), coordination);
  }

  /** Close the database; pending WAL content is checkpointed by SQLite. Idempotent. */
  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  // ── the file (sqlite-file.ts) ──────────────────────────────────────────────────────────────

  /** A consistent, self-contained, integrity-checked copy of the database at `destination`, while others keep writing. */
  backup(destination: string): Promise<void> {
    return backupDatabase(this.db, destination);
  }

  /** Checks that `path` is a Shortleaf database this version can open (`notShortleafDatabase`, `schemaTooNew` otherwise). */
  static verifyFile(path: string, opts: Pick<OpenOptions, 'migrationsDir'> = {}): Promise<void> {
    return verifyDatabaseFile(path, opts);
  }

  // ── diagnostics ────────────────────────────────────────────────────────────────────────────

  /**
   * Row count of every table, by table name (including `schema_migrations`). Lets tests and
   * operators check that a refused request left the database exactly as it was.
   */
  async counts(): Promise<Record<string, number>> {
    const { guard, stmt } = this.context;
    return guard(() => {
      const tables = stmt(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
      )
        .pluck()
        .all() as string[];
      const counts: Record<string, number> = {};
      for (const table of tables) {
        const quoted = `"${table.replaceAll('"', '""')}"`;
        counts[table] = stmt(`SELECT COUNT(*) FROM ${quoted}`).pluck().get() as number;
      }
      return counts;
    });
  }
}
