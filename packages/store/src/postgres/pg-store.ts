import pg from 'pg';
import { PgAcmeRepository } from './pg-acme-repository.js';
import { PgAuditRepository } from './pg-audit-repository.js';
import { PgCertificateRepository } from './pg-certificate-repository.js';
import { createPgContext, type PgContext } from './pg-context.js';
import { PgCoordination } from './pg-coordination.js';
import { unavailableReason } from './pg-errors.js';
import { PgIssuerRepository } from './pg-issuer-repository.js';
import { stderrLogger, type PgLogger } from './pg-logger.js';
import { applyPgMigrations, loadPgMigrations } from './pg-migrate.js';
import { PgProvisionerRepository } from './pg-provisioner-repository.js';
import { PgRevocationRepository } from './pg-revocation-repository.js';
import { PgSettingsRepository } from './pg-settings-repository.js';
import { RepositoryStore } from '../repository-store.js';

/** Options for `PostgresStore.open`. */
export interface PgOpenOptions {
  /** Folder of `NNNN_name.sql` files; defaults to the repository's `migrations/postgres/`. */
  migrationsDir?: string | URL;
  /** Connections this store's pool keeps at most (default 10); locks and the listener have their own. */
  poolSize?: number;
  /** Where lost connections and reconnects are reported (default: JSON lines on stderr). */
  logger?: PgLogger;
}

// A request during a database outage must fail fast (a 503 the client retries), never hang.
const connectTimeoutMs = 5000;
const defaultPoolSize = 10;

/**
 * Shortleaf's storage on PostgreSQL: the engine any number of instances share (contracts/store.ts).
 * Semantics, codes and orderings are SQLite's, pinned by the contract suite; the differences are
 * PostgreSQL's: uniqueness across instances comes from constraints and row locks instead of one
 * writer, the coordination engine is real (advisory locks, LISTEN/NOTIFY), and a database that
 * cannot be reached is `storageUnavailable` within seconds. The work is done by one repository per
 * concern on one pool; this class opens the pool, migrates, and hands each its part.
 */
export class PostgresStore extends RepositoryStore {
  readonly engine = 'postgres';
  /** Revocations, blocked keys, CRLs, root CRLs and root-delegated OCSP signers. */
  declare readonly revocations: PgRevocationRepository;
  /** ACME accounts, EAB keys, orders, authorizations, challenges and spent nonces. */
  declare readonly acme: PgAcmeRepository;
  /** Advisory locks and LISTEN/NOTIFY among every instance on this database. */
  declare readonly coordination: PgCoordination;
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly ctx: PgContext,
    coordination: PgCoordination,
  ) {
    super({
      issuers: new PgIssuerRepository(ctx),
      provisioners: new PgProvisionerRepository(ctx),
      certificates: new PgCertificateRepository(ctx),
      audit: new PgAuditRepository(ctx),
      settings: new PgSettingsRepository(ctx),
      revocations: new PgRevocationRepository(ctx),
      acme: new PgAcmeRepository(ctx),
      coordination,
    });
  }

  /**
   * Connect to the database at `url` (`postgres://…`) and bring its schema up to date (several
   * instances opening together apply each migration once). A database that cannot be reached is
   * `storageUnavailable`, which the caller may retry; nothing is left open when this throws.
   */
  static async open(url: string, opts: PgOpenOptions = {}): Promise<PostgresStore> {
    const logger = opts.logger ?? stderrLogger;
    const migrations = loadPgMigrations(opts.migrationsDir);
    const config: pg.ClientConfig = {
      connectionString: url,
      connectionTimeoutMillis: connectTimeoutMs,
      // Probes after 10 s idle, so a connection to a database host that vanished (a network cut,
      // a failover by moving an address) is noticed in about a minute, not the kernel's two hours:
      // the notice connection reconnects and a lock's holder learns it lost the lock.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      application_name: 'shortleaf',
    };
    const pool = new pg.Pool({ ...config, max: opts.poolSize ?? defaultPoolSize });
    // An idle client whose connection dies (a restart, a failover) is dropped by the pool; the
    // event must have a listener or Node ends the process. The next request gets a new client.
    pool.on('error', (err) => {
      logger.warn('store_idle_connection_lost', { reason: unavailableReason(err) ?? 'error' });
    });
    try {
      await applyPgMigrations(pool, migrations);
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
    return new PostgresStore(createPgContext(pool), new PgCoordination(config, logger));
  }

  /** Ends the pool, every held lock's connection and the listening connection. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.coordination.close();
      await this.ctx.pool.end();
    })();
    return this.closing;
  }

  // ── diagnostics ────────────────────────────────────────────────────────────────────────────

  /**
   * Row count of every table of the store's schema, by table name (including
   * `schema_migrations`), read in one statement so the counts are of one moment. Lets tests and
   * operators check that a refused request left the database exactly as it was.
   */
  async counts(): Promise<Record<string, number>> {
    const tables = await this.ctx.query<{ name: string }>(
      `SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename COLLATE "C"`,
    );
    if (tables.length === 0) return {};
    const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`;
    const literal = (name: string): string => `'${name.replaceAll("'", "''")}'`;
    const rows = await this.ctx.query<{ name: string; n: number }>(
      tables
        .map((t) => `SELECT ${literal(t.name)} AS name, count(*)::int AS n FROM ${quote(t.name)}`)
        .join(' UNION ALL '),
    );
    return Object.fromEntries(rows.map((r) => [r.name, r.n]));
  }
}
