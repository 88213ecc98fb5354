import pg from 'pg';
import type { AuditEntry, ListAuditOptions, ListCertificatesOptions } from '../contracts/records.js';
import type {
  CertificateRecord,
  CertificatesSince,
  IssuerRecord,
  NewIssuer,
  NewProvisioner,
  ProvisionerRecord,
  ReserveCertificateInput,
} from '../contracts/records.js';
import type { BlockedKeyRecord } from '../contracts/revocations.js';
import type { Store } from '../contracts/store.js';
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
export class PostgresStore implements Store {
  readonly engine = 'postgres';
  private readonly issuers: PgIssuerRepository;
  private readonly provisioners: PgProvisionerRepository;
  private readonly certificates: PgCertificateRepository;
  private readonly audit: PgAuditRepository;
  private readonly settings: PgSettingsRepository;
  /** Revocations, blocked keys, CRLs, root CRLs and root-delegated OCSP signers. */
  readonly revocations: PgRevocationRepository;
  /** ACME accounts, EAB keys, orders, authorizations, challenges and spent nonces. */
  readonly acme: PgAcmeRepository;
  /** Advisory locks and LISTEN/NOTIFY among every instance on this database. */
  readonly coordination: PgCoordination;
  private closing: Promise<void> | null = null;

  private constructor(
    private readonly ctx: PgContext,
    coordination: PgCoordination,
  ) {
    this.issuers = new PgIssuerRepository(ctx);
    this.provisioners = new PgProvisionerRepository(ctx);
    this.certificates = new PgCertificateRepository(ctx);
    this.audit = new PgAuditRepository(ctx);
    this.settings = new PgSettingsRepository(ctx);
    this.revocations = new PgRevocationRepository(ctx);
    this.acme = new PgAcmeRepository(ctx);
    this.coordination = coordination;
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

  // ── issuers and roots (pg-issuer-repository.ts) ────────────────────────────────────────────

  createIssuer(r: NewIssuer): Promise<void> {
    return this.issuers.createIssuer(r);
  }
  setIssuerCertificate(id: string, certDer: Uint8Array): Promise<void> {
    return this.issuers.setIssuerCertificate(id, certDer);
  }
  getIssuer(id: string): Promise<IssuerRecord | null> {
    return this.issuers.getIssuer(id);
  }
  getIssuerByName(name: string): Promise<IssuerRecord | null> {
    return this.issuers.getIssuerByName(name);
  }
  getActiveIssuer(): Promise<IssuerRecord | null> {
    return this.issuers.getActiveIssuer();
  }
  listIssuers(): Promise<IssuerRecord[]> {
    return this.issuers.listIssuers();
  }
  activateIssuer(id: string, at: Date): Promise<void> {
    return this.issuers.activateIssuer(id, at);
  }
  lastCertificateExpiry(issuerId: string, exceptProvisioners: readonly string[] = []): Promise<Date | null> {
    return this.issuers.lastCertificateExpiry(issuerId, exceptProvisioners);
  }
  addRoot(certDer: Uint8Array, at: Date): Promise<string> {
    return this.issuers.addRoot(certDer, at);
  }
  listRoots(): Promise<Uint8Array[]> {
    return this.issuers.listRoots();
  }

  // ── provisioners (pg-provisioner-repository.ts) ────────────────────────────────────────────

  addProvisioner(r: NewProvisioner): Promise<void> {
    return this.provisioners.addProvisioner(r);
  }
  getProvisioner(name: string): Promise<ProvisionerRecord | null> {
    return this.provisioners.getProvisioner(name);
  }
  listProvisioners(): Promise<ProvisionerRecord[]> {
    return this.provisioners.listProvisioners();
  }

  // ── certificates and token uses (pg-certificate-repository.ts) ─────────────────────────────

  reserveCertificate(input: ReserveCertificateInput): Promise<void> {
    return this.certificates.reserveCertificate(input);
  }
  completeCertificate(serial: string, der: Uint8Array, issuedAt: Date): Promise<void> {
    return this.certificates.completeCertificate(serial, der, issuedAt);
  }
  getCertificate(serial: string): Promise<CertificateRecord | null> {
    return this.certificates.getCertificate(serial);
  }
  listLineage(lineage: string): Promise<CertificateRecord[]> {
    return this.certificates.listLineage(lineage);
  }
  listCertificates(opts: ListCertificatesOptions = {}): Promise<CertificateRecord[]> {
    return this.certificates.listCertificates(opts);
  }
  pruneTokenUses(now: Date): Promise<number> {
    return this.certificates.pruneTokenUses(now);
  }
  countCertificatesSince(provisioner: string, requester: string, since: Date): Promise<CertificatesSince> {
    return this.certificates.countCertificatesSince(provisioner, requester, since);
  }
  /** The block on a public key (by key digest), or null when the key is not blocked. */
  getBlockedKey(spkiSha256: string): Promise<BlockedKeyRecord | null> {
    return this.revocations.blockedKey(spkiSha256);
  }

  // ── audit and settings (pg-audit-repository.ts, pg-settings-repository.ts) ─────────────────

  appendAudit(e: AuditEntry): Promise<void> {
    return this.audit.appendAudit(e);
  }
  listAudit(opts: ListAuditOptions = {}): Promise<AuditEntry[]> {
    return this.audit.listAudit(opts);
  }
  getSetting(key: string): Promise<string | null> {
    return this.settings.getSetting(key);
  }
  setSetting(key: string, value: string): Promise<void> {
    return this.settings.setSetting(key, value);
  }
  settingOnce(key: string, value: string): Promise<string> {
    return this.settings.settingOnce(key, value);
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
