import Database from 'better-sqlite3';
import { AcmeRepository } from './acme-repository.js';
import { AuditRepository, insertAudit } from './audit-repository.js';
import { CertificateRepository } from './certificate-repository.js';
import type { Store } from './contracts/store.js';
import type { BlockedKeyRecord } from './contracts/revocations.js';
import { StoreError } from './errors.js';
import { IssuerRepository } from './issuer-repository.js';
import { applyMigrations, loadMigrations, pendingMigrations } from './migrate.js';
import { ProvisionerRepository } from './provisioner-repository.js';
import type {
  AuditEntry,
  CertificateRecord,
  CertificatesSince,
  IssuerRecord,
  ListAuditOptions,
  ListCertificatesOptions,
  NewIssuer,
  NewProvisioner,
  OpenOptions,
  ProvisionerRecord,
  ReserveCertificateInput,
} from './records.js';
import { RevocationRepository } from './revocation-repository.js';
import { SettingsRepository } from './settings-repository.js';
import { backfillKeyDigests } from './sqlite-backfill.js';
import type { RepositoryContext } from './sqlite-context.js';
import { toStorageError } from './sqlite-errors.js';
import { SqliteCoordination } from './sqlite-coordination.js';
import { backupDatabase, prepareDatabaseFile, verifyDatabaseFile } from './sqlite-file.js';

const busyTimeoutMs = 5000;

/**
 * Shortleaf's storage on one SQLite file: the SQLite engine of the `Store` contract
 * (contracts/store.ts). Every method is async although better-sqlite3 is synchronous, so the
 * authority is written against an interface a PostgreSQL engine can also satisfy. Each method is
 * one transaction at most; failures of the disk come out as `StoreError('storageUnavailable')`,
 * duplicates and missing rows as their own codes. The work is done by one repository per concern
 * on this one connection (issuers and roots, provisioners, certificates, audit, settings,
 * revocations, ACME); this class opens the file and hands each its part.
 */
export class SqliteStore implements Store {
  private readonly statements = new Map<string, Database.Statement>();
  private readonly issuers: IssuerRepository;
  private readonly provisioners: ProvisionerRepository;
  private readonly certificates: CertificateRepository;
  private readonly audit: AuditRepository;
  private readonly settings: SettingsRepository;
  /** Revocations, CRLs, root CRLs and root-delegated OCSP signers, on this same connection. */
  readonly revocations: RevocationRepository;
  /** ACME accounts, EAB keys, orders, authorizations and challenges, on this same connection. */
  readonly acme: AcmeRepository;
  /** Locks and notices within this process: one process owns a SQLite database. */
  readonly coordination = new SqliteCoordination();
  readonly engine = 'sqlite';

  private constructor(private readonly db: Database.Database) {
    const context: RepositoryContext = {
      db,
      stmt: (sql) => this.stmt(sql),
      guard: (op) => this.guard(op),
      insertAudit: (e) => insertAudit((sql) => this.stmt(sql), e),
      notify: (topic) => this.coordination.notify(topic),
    };
    this.issuers = new IssuerRepository(context);
    this.provisioners = new ProvisionerRepository(context);
    this.certificates = new CertificateRepository(context);
    this.audit = new AuditRepository(context);
    this.settings = new SettingsRepository(context);
    this.revocations = new RevocationRepository(context);
    this.acme = new AcmeRepository(context);
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
    return new SqliteStore(db);
  }

  /** Close the database; pending WAL content is checkpointed by SQLite. Idempotent. */
  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  // Statements are compiled once per SQL text and reused: issuance is the hot path.
  private stmt(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  // Runs one store operation and converts disk-level SQLite failures; sync inside, so a throw
  // becomes the rejection of the calling async method.
  private guard<T>(operation: () => T): T {
    try {
      return operation();
    } catch (err) {
      throw toStorageError(err);
    }
  }

  // ── issuers and roots (issuer-repository.ts) ───────────────────────────────────────────────

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

  // ── provisioners (provisioner-repository.ts) ───────────────────────────────────────────────

  addProvisioner(r: NewProvisioner): Promise<void> {
    return this.provisioners.addProvisioner(r);
  }
  getProvisioner(name: string): Promise<ProvisionerRecord | null> {
    return this.provisioners.getProvisioner(name);
  }
  listProvisioners(): Promise<ProvisionerRecord[]> {
    return this.provisioners.listProvisioners();
  }

  // ── certificates and token uses (certificate-repository.ts) ────────────────────────────────

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

  // ── audit and settings (audit-repository.ts, settings-repository.ts) ───────────────────────

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
    return this.guard(() => {
      const tables = this.stmt(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
      )
        .pluck()
        .all() as string[];
      const counts: Record<string, number> = {};
      for (const table of tables) {
        const quoted = `"${table.replaceAll('"', '""')}"`;
        counts[table] = this.stmt(`SELECT COUNT(*) FROM ${quoted}`).pluck().get() as number;
      }
      return counts;
    });
  }
}
