import { createHash } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { StoreError } from './errors.js';
import type { Store } from './contracts/store.js';
import { AcmeRepository } from './acme-repository.js';
import { GroupCommitter } from './group-commit.js';
import { certificateKeyDigest } from './key-digest.js';
import { RevocationRepository } from './revocation-repository.js';
import type { BlockedKeyRecord, RepositoryContext } from './revocation-repository.js';
import { applyMigrations, loadMigrations, pendingMigrations } from './migrate.js';
import type {
  AuditEntry,
  CertificateRecord,
  IssuerRecord,
  ListAuditOptions,
  ListCertificatesOptions,
  NewIssuer,
  NewProvisioner,
  OpenOptions,
  ProvisionerRecord,
  ReserveCertificateInput,
} from './records.js';
import { toAuditEntry, toCertificateRecord, toIssuerRecord, toProvisionerRecord, toText } from './rows.js';
import type { AuditRow, CertificateRow, IssuerRow, ProvisionerRow } from './rows.js';
import { isForeignKeyViolation, isUniqueViolation, toStorageError } from './sqlite-errors.js';

const busyTimeoutMs = 5000;

// The database holds sealed keys and the record of every certificate: only the CA's own user may
// read it. The folder is made private only when we create it; an existing one is the operator's.
function prepareDatabaseFile(path: string): void {
  const dir = dirname(resolve(path));
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700); // mode passed to mkdir is filtered by the umask
  }
  // Create it 0600 before SQLite does, so it is never readable by others even for a moment;
  // SQLite gives the -wal and -shm files the mode of the database file.
  closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    if (existsSync(file)) chmodSync(file, 0o600);
  }
}

// SQLite's own check of every page, index and constraint; "ok" or a list of problems.
function checkIntegrity(db: Database.Database, path: string): void {
  const result = db.pragma('integrity_check', { simple: true }) as string;
  if (result !== 'ok') throw new StoreError('notShortleafDatabase', `${path} fails SQLite's integrity check: ${result}`);
}

/**
 * Fills in the key digest of certificates recorded before migration 0005 (SQLite cannot hash a
 * key inside a certificate), and blocks the keys of those already revoked for keyCompromise by
 * the operator or by a revoker who proved it held the key (the actors the authority records for
 * mTLS self-revocation and ACME requests signed with the certificate's key), as a revocation today would.
 * Idempotent and cheap once done: it only looks at rows whose digest is still missing.
 */
function backfillKeyDigests(db: Database.Database): void {
  // A database opened with an older migrations folder (tests of earlier schemas) has no column to fill.
  if (db.prepare("SELECT 1 FROM pragma_table_info('certificates') WHERE name = 'spki_sha256'").get() === undefined) return;
  const missing = db.prepare('SELECT serial, der FROM certificates WHERE spki_sha256 IS NULL AND der IS NOT NULL').all() as Array<{ serial: string; der: Buffer }>;
  if (missing.length === 0) return;
  const set = db.prepare('UPDATE certificates SET spki_sha256 = ? WHERE serial = ?');
  db.transaction(() => {
    for (const row of missing) {
      const digest = certificateKeyDigest(row.der);
      if (digest !== null) set.run(digest, row.serial);
    }
    db.prepare(
      `INSERT OR IGNORE INTO blocked_keys (spki_sha256, reason, serial, blocked_at)
       SELECT c.spki_sha256, r.reason, r.serial, r.revoked_at FROM revocations r JOIN certificates c ON c.serial = r.serial
       WHERE r.reason = 'keyCompromise' AND c.spki_sha256 IS NOT NULL
         AND (r.actor LIKE 'operator:%' OR r.actor LIKE 'certificate:%' OR r.actor LIKE 'certificate-key:%')`,
    ).run();
  }).immediate();
}

function checkLimit(limit: number | undefined): number {
  if (limit === undefined) return -1; // SQLite: a negative LIMIT means no limit
  if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
  return limit;
}

/**
 * Shortleaf's storage on one SQLite file. Every method is async although better-sqlite3 is
 * synchronous, so the authority can be written against an interface a PostgreSQL implementation
 * can also satisfy. Each method is one transaction at most; failures of the disk come out as
 * `StoreError('storageUnavailable')`, duplicates and missing rows as their own codes.
 */
export class SqliteStore implements Store {
  private readonly statements = new Map<string, Database.Statement>();
  private readonly activateTransaction: Database.Transaction<(id: string, at: Date) => void>;
  private readonly issuanceWrites: GroupCommitter;
  /** Revocations, CRLs, root CRLs and root-delegated OCSP signers, on this same connection. */
  readonly revocations: RevocationRepository;
  /** ACME accounts, EAB keys, orders, authorizations and challenges, on this same connection. */
  readonly acme: AcmeRepository;

  private constructor(private readonly db: Database.Database) {
    this.issuanceWrites = new GroupCommitter(db, (err) => (err instanceof StoreError ? err : toStorageError(err)));
    const context: RepositoryContext = { db, stmt: (sql) => this.stmt(sql), guard: (op) => this.guard(op), insertAudit: (e) => this.insertAudit(e) };
    this.revocations = new RevocationRepository(context);
    this.acme = new AcmeRepository(context);
    this.activateTransaction = db.transaction((id: string, at: Date) => this.activateInTransaction(id, at));
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

  // ── issuers ────────────────────────────────────────────────────────────────────────────────

  /** Record a new issuer (not yet certified, not active). `conflict` if its id or name is taken. */
  async createIssuer(r: NewIssuer): Promise<void> {
    this.guard(() => {
      try {
        this.stmt(
          `INSERT INTO issuers (id, name, sealed_key, key_algorithm, csr_der, created_at)
           VALUES (?, ?, ?, ?, ?, ?)`,
        ).run(r.id, r.name, r.sealedKey, r.keyAlgorithm, r.csrDer, toText(r.createdAt));
      } catch (err) {
        if (isUniqueViolation(err)) {
          throw new StoreError('conflict', `an issuer with id ${r.id} or name ${r.name} already exists`, { cause: err });
        }
        throw err;
      }
    });
  }

  /** Attach the certificate the offline root signed for this issuer's CSR. `notFound` if no such issuer. */
  async setIssuerCertificate(id: string, certDer: Uint8Array): Promise<void> {
    this.guard(() => {
      const result = this.stmt('UPDATE issuers SET cert_der = ? WHERE id = ?').run(certDer, id);
      if (result.changes === 0) throw new StoreError('notFound', `no issuer with id ${id}`);
    });
  }

  /** The issuer with this id, or null. */
  async getIssuer(id: string): Promise<IssuerRecord | null> {
    return this.guard(() => {
      const row = this.stmt('SELECT * FROM issuers WHERE id = ?').get(id) as IssuerRow | undefined;
      return row === undefined ? null : toIssuerRecord(row);
    });
  }

  /** The issuer with this name, or null. */
  async getIssuerByName(name: string): Promise<IssuerRecord | null> {
    return this.guard(() => {
      const row = this.stmt('SELECT * FROM issuers WHERE name = ?').get(name) as IssuerRow | undefined;
      return row === undefined ? null : toIssuerRecord(row);
    });
  }

  /** The issuer that signs new certificates, or null before one has been activated. */
  async getActiveIssuer(): Promise<IssuerRecord | null> {
    return this.guard(() => {
      const row = this.stmt('SELECT * FROM issuers WHERE active = 1').get() as IssuerRow | undefined;
      return row === undefined ? null : toIssuerRecord(row);
    });
  }

  /** All issuers, oldest first. */
  async listIssuers(): Promise<IssuerRecord[]> {
    return this.guard(() =>
      (this.stmt('SELECT * FROM issuers ORDER BY created_at, id').all() as IssuerRow[]).map(toIssuerRecord),
    );
  }

  /**
   * Make this issuer the one that signs, deactivating any other in the same transaction so there
   * is never a moment with two (the partial unique index enforces it too). `notFound` if the issuer
   * does not exist or has no certificate yet: an issuer cannot sign before the root has signed it.
   */
  async activateIssuer(id: string, at: Date): Promise<void> {
    this.guard(() => this.activateTransaction.immediate(id, at));
  }

  private activateInTransaction(id: string, at: Date): void {
    const row = this.stmt('SELECT cert_der IS NOT NULL AS certified FROM issuers WHERE id = ?').get(id) as
      | { certified: number }
      | undefined;
    if (row === undefined) throw new StoreError('notFound', `no issuer with id ${id}`);
    if (row.certified !== 1) throw new StoreError('notFound', `issuer ${id} has no certificate yet; cannot activate it`);
    this.stmt('UPDATE issuers SET active = 0 WHERE active = 1 AND id != ?').run(id);
    // Re-activating the active issuer keeps the time it first became active.
    this.stmt(
      'UPDATE issuers SET activated_at = CASE WHEN active = 1 THEN activated_at ELSE ? END, active = 1 WHERE id = ?',
    ).run(toText(at), id);
  }

  /**
   * The latest notAfter among the certificates an issuer signed, leaving out the given
   * provisioners (the CA's own OCSP responder certificates, which a retired issuer keeps signing
   * only for as long as it answers). Null when it signed none.
   */
  async lastCertificateExpiry(issuerId: string, exceptProvisioners: readonly string[] = []): Promise<Date | null> {
    return this.guard(() => {
      const excluded = exceptProvisioners.map(() => '?').join(', ');
      const sql = `SELECT MAX(not_after) FROM certificates WHERE issuer_id = ?${excluded === '' ? '' : ` AND provisioner NOT IN (${excluded})`}`;
      const value = this.stmt(sql).pluck().get(issuerId, ...exceptProvisioners) as string | null;
      return value === null ? null : new Date(value);
    });
  }

  // ── roots ──────────────────────────────────────────────────────────────────────────────────

  /** Trust a root certificate; adding the same DER twice is a no-op. Returns its SHA-256 fingerprint (hex). */
  async addRoot(certDer: Uint8Array, at: Date): Promise<string> {
    const fingerprint = createHash('sha256').update(certDer).digest('hex');
    this.guard(() =>
      this.stmt('INSERT INTO roots (fingerprint, cert_der, added_at) VALUES (?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING').run(
        fingerprint,
        certDer,
        toText(at),
      ),
    );
    return fingerprint;
  }

  /** The trusted roots' DER, in the order they were added. */
  async listRoots(): Promise<Uint8Array[]> {
    return this.guard(() => this.stmt('SELECT cert_der FROM roots ORDER BY added_at, fingerprint').pluck().all() as Buffer[]);
  }

  // ── provisioners ───────────────────────────────────────────────────────────────────────────

  /** Add a provisioner. `conflict` if one with this name exists: replacing credentials is a separate, deliberate act. */
  async addProvisioner(r: NewProvisioner): Promise<void> {
    this.guard(() => {
      try {
        this.stmt('INSERT INTO provisioners (name, type, public_jwk, policy, options, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(
          r.name,
          r.type,
          r.publicJwk,
          r.policy,
          r.options ?? '{}',
          toText(r.createdAt),
        );
      } catch (err) {
        if (isUniqueViolation(err)) throw new StoreError('conflict', `a provisioner named ${r.name} already exists`, { cause: err });
        throw err;
      }
    });
  }

  /** The provisioner with this name, or null. */
  async getProvisioner(name: string): Promise<ProvisionerRecord | null> {
    return this.guard(() => {
      const row = this.stmt('SELECT * FROM provisioners WHERE name = ?').get(name) as ProvisionerRow | undefined;
      return row === undefined ? null : toProvisionerRecord(row);
    });
  }

  /** All provisioners, by name. */
  async listProvisioners(): Promise<ProvisionerRecord[]> {
    return this.guard(() =>
      (this.stmt('SELECT * FROM provisioners ORDER BY name').all() as ProvisionerRow[]).map(toProvisionerRecord),
    );
  }

  // ── issuance ───────────────────────────────────────────────────────────────────────────────

  /**
   * First step of issuance (Boulder's order): in one transaction, spend the one-time token, record
   * the certificate we intend to sign (status `reserved`, no DER) and its audit entry. Either all
   * three are written or none: a spent token is `tokenReplayed`, a serial already used is
   * `serialCollision` (and the token stays unspent, so the caller may retry with a new serial),
   * an unknown issuer is `notFound`.
   */
  async reserveCertificate(input: ReserveCertificateInput): Promise<void> {
    return this.issuanceWrites.submit(() => this.reserveInTransaction(input));
  }

  private reserveInTransaction({ certificate: c, tokenUse, audit }: ReserveCertificateInput): void {
    if (tokenUse !== undefined) {
      try {
        this.stmt('INSERT INTO token_uses (provisioner, jti, expires_at) VALUES (?, ?, ?)').run(
          tokenUse.provisioner,
          tokenUse.jti,
          toText(tokenUse.expiresAt),
        );
      } catch (err) {
        if (isUniqueViolation(err)) {
          throw new StoreError('tokenReplayed', `this token for provisioner ${tokenUse.provisioner} has already been used`, {
            cause: err,
          });
        }
        throw err;
      }
    }
    // Checked under the write lock, in the same transaction as the reservation: a key blocked or a
    // parent revoked a moment ago cannot slip in between a check and the insert. A throw here rolls
    // back this write's savepoint, so the token stays unspent.
    const spki = c.spkiSha256 ?? null;
    if (spki !== null && this.stmt('SELECT 1 FROM blocked_keys WHERE spki_sha256 = ?').get(spki) !== undefined) {
      throw new StoreError('keyBlocked', 'this public key was revoked for keyCompromise and is blocked');
    }
    const renewedFrom = c.renewedFrom ?? null;
    if (renewedFrom !== null) {
      const reason = this.stmt('SELECT reason FROM revocations WHERE serial = ?').pluck().get(renewedFrom) as string | undefined;
      if (reason !== undefined) throw new StoreError('revoked', `certificate ${renewedFrom} was revoked (${reason}); it cannot renew`);
    }
    try {
      this.stmt(
        `INSERT INTO certificates
           (serial, issuer_id, subject, names, not_before, not_after, der, provisioner, requester, status, created_at, issued_at,
            renewed_from, lineage, lineage_started_at, spki_sha256, tbs_der)
         VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, 'reserved', ?, NULL, ?, ?, ?, ?, ?)`,
      ).run(
        c.serial,
        c.issuerId,
        c.subject,
        JSON.stringify(c.names),
        toText(c.notBefore),
        toText(c.notAfter),
        c.provisioner,
        c.requester,
        toText(c.createdAt),
        renewedFrom,
        c.lineage ?? c.serial,
        toText(c.lineageStartedAt ?? c.createdAt),
        spki,
        c.tbsDer ?? null,
      );
    } catch (err) {
      if (isUniqueViolation(err)) throw new StoreError('serialCollision', `serial ${c.serial} is already in use`, { cause: err });
      if (isForeignKeyViolation(err)) throw new StoreError('notFound', `no issuer with id ${c.issuerId}`, { cause: err });
      throw err;
    }
    this.insertAudit(audit);
  }

  /**
   * Second step of issuance: store the signed DER and mark the reservation issued, in one
   * statement. `notFound` if there is no reserved certificate with this serial (never reserved,
   * or already completed: a serial is signed once).
   */
  async completeCertificate(serial: string, der: Uint8Array, issuedAt: Date): Promise<void> {
    return this.issuanceWrites.submit(() => {
      const result = this.stmt(
        "UPDATE certificates SET der = ?, status = 'issued', issued_at = ? WHERE serial = ? AND status = 'reserved'",
      ).run(der, toText(issuedAt), serial);
      if (result.changes === 0) throw new StoreError('notFound', `no reserved certificate with serial ${serial}`);
    });
  }

  /** The certificate with this serial (lowercase hex), reserved or issued, or null. */
  async getCertificate(serial: string): Promise<CertificateRecord | null> {
    return this.guard(() => {
      const row = this.stmt('SELECT * FROM certificates WHERE serial = ?').get(serial) as CertificateRow | undefined;
      return row === undefined ? null : toCertificateRecord(row);
    });
  }

  /** Every certificate of a lineage (named by the serial that started it), oldest first. */
  async listLineage(lineage: string): Promise<CertificateRecord[]> {
    return this.guard(() =>
      (this.stmt('SELECT * FROM certificates WHERE lineage = ? ORDER BY created_at, rowid').all(lineage) as CertificateRow[]).map(toCertificateRecord),
    );
  }

  /** The block on a public key (by key digest), or null when the key is not blocked. */
  async getBlockedKey(spkiSha256: string): Promise<BlockedKeyRecord | null> {
    return this.revocations.blockedKey(spkiSha256);
  }

  /** Certificates in the order they were reserved, optionally only one status and/or expiring before a time. */
  async listCertificates(opts: ListCertificatesOptions = {}): Promise<CertificateRecord[]> {
    const limit = checkLimit(opts.limit);
    const where: string[] = [];
    const params: Record<string, string | number> = { limit };
    if (opts.status !== undefined) {
      where.push('status = @status');
      params.status = opts.status;
    }
    if (opts.expiringBefore !== undefined) {
      where.push('not_after < @expiringBefore');
      params.expiringBefore = toText(opts.expiringBefore);
    }
    // One SQL text per combination of filters, so each is prepared once and can use its index.
    const sql = `SELECT * FROM certificates ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, rowid LIMIT @limit`;
    return this.guard(() => (this.stmt(sql).all(params) as CertificateRow[]).map(toCertificateRecord));
  }

  /**
   * Forget spent tokens whose `expires_at` is before `now`. The authority records there the last
   * instant a token could verify (exp plus clock skew), so a forgotten token is refused as
   * expired anyway. Returns how many.
   */
  async pruneTokenUses(now: Date): Promise<number> {
    return this.guard(() => this.stmt('DELETE FROM token_uses WHERE expires_at < ?').run(toText(now)).changes);
  }

  // ── audit ──────────────────────────────────────────────────────────────────────────────────

  /** Append one audit entry. */
  async appendAudit(e: AuditEntry): Promise<void> {
    this.guard(() => this.insertAudit(e));
  }

  private insertAudit(e: AuditEntry): void {
    this.stmt('INSERT INTO audit_log (at, action, actor, serial, detail) VALUES (?, ?, ?, ?, ?)').run(
      toText(e.at),
      e.action,
      e.actor,
      e.serial,
      JSON.stringify(e.detail),
    );
  }

  /** Audit entries in the order they were written, optionally only those at or after `since` and of one `action`. */
  async listAudit(opts: ListAuditOptions = {}): Promise<AuditEntry[]> {
    const where: string[] = [];
    const params: Record<string, string | number> = { limit: checkLimit(opts.limit) };
    if (opts.since !== undefined) {
      where.push('at >= @since');
      params.since = toText(opts.since);
    }
    if (opts.action !== undefined) {
      where.push('action = @action');
      params.action = opts.action;
    }
    const sql = `SELECT * FROM audit_log ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT @limit`;
    return this.guard(() => (this.stmt(sql).all(params) as AuditRow[]).map(toAuditEntry));
  }

  // ── settings ───────────────────────────────────────────────────────────────────────────────

  /** The value stored under `key`, or null. */
  async getSetting(key: string): Promise<string | null> {
    return this.guard(() => {
      const value = this.stmt('SELECT value FROM settings WHERE key = ?').pluck().get(key) as string | undefined;
      return value ?? null;
    });
  }

  /** Store `value` under `key`, replacing any previous value. */
  async setSetting(key: string, value: string): Promise<void> {
    this.guard(() =>
      this.stmt('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value),
    );
  }

  // ── backup ─────────────────────────────────────────────────────────────────────────────────

  /**
   * Copies the database to `destination` with SQLite's online backup API while other connections
   * keep writing. All pages are copied in one step, which is one read transaction: under WAL that
   * is a consistent snapshot and never blocks the writer, and a write by another process cannot
   * restart a copy that is already half done.
   */
  async backup(destination: string): Promise<void> {
    try {
      await this.db.backup(destination, { progress: () => 0x7fffffff });
      // The copy is one self-contained file (no -wal beside it), checked before anyone relies on it.
      const copy = new Database(destination, { fileMustExist: true });
      try {
        copy.pragma('journal_mode = DELETE');
        checkIntegrity(copy, destination);
      } finally {
        copy.close();
      }
    } catch (err) {
      throw err instanceof StoreError ? err : toStorageError(err);
    }
  }

  /**
   * Checks that the file at `path` is a Shortleaf database this version can open: SQLite's
   * `integrity_check` passes, its schema records Shortleaf's migrations, and none newer than this
   * code knows (`schemaTooNew`). Anything else is `notShortleafDatabase`, with SQLite's reason.
   * Opens the file read-write (SQLite may touch its journal), so check a copy you own.
   */
  static async verifyFile(path: string, opts: Pick<OpenOptions, 'migrationsDir'> = {}): Promise<void> {
    const migrations = loadMigrations(opts.migrationsDir);
    let db: Database.Database;
    try {
      db = new Database(path, { fileMustExist: true });
    } catch (err) {
      throw new StoreError('notShortleafDatabase', `${path} cannot be opened as a database: ${(err as Error).message}`, { cause: err });
    }
    try {
      checkIntegrity(db, path);
      const hasSchema = (table: string) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
      if (!hasSchema('schema_migrations') || !hasSchema('certificates') || !hasSchema('issuers')) {
        throw new StoreError('notShortleafDatabase', `${path} is an SQLite database but not a Shortleaf one (no Shortleaf schema)`);
      }
      pendingMigrations(db, migrations); // throws schemaTooNew
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError('notShortleafDatabase', `${path} is not a Shortleaf database: ${(err as Error).message}`, { cause: err });
    } finally {
      db.close();
    }
  }

  // ── diagnostics ────────────────────────────────────────────────────────────────────────────

  /**
   * Row count of every table, by table name (including `schema_migrations`). Lets tests and
   * operators check that a refused request left the database exactly as it was.
   */
  async counts(): Promise<Record<string, number>> {
    return this.guard(() => {
      const tables = this.stmt("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
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
