import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { StoreError } from './errors.js';
import type { IssuerRecord, NewIssuer } from './contracts/records.js';
import { toIssuerRecord, toText } from './rows.js';
import type { IssuerRow } from './rows.js';
import type { RepositoryContext } from './sqlite-context.js';
import { isUniqueViolation } from './sqlite-errors.js';

/** Intermediate issuers (one active at a time) and the trusted roots, on the store's SQLite connection. */
export class IssuerRepository {
  private readonly activateTransaction: Database.Transaction<(id: string, at: Date) => void>;

  constructor(private readonly ctx: RepositoryContext) {
    this.activateTransaction = ctx.db.transaction((id: string, at: Date) => this.activateInTransaction(id, at));
  }

  /** Record a new issuer (not yet certified, not active). `conflict` if its id or name is taken. */
  async createIssuer(r: NewIssuer): Promise<void> {
    this.ctx.guard(() => {
      try {
        this.ctx
          .stmt(
            `INSERT INTO issuers (id, name, sealed_key, key_algorithm, csr_der, created_at)
           VALUES (?, ?, ?, ?, ?, ?)`,
          )
          .run(r.id, r.name, r.sealedKey, r.keyAlgorithm, r.csrDer, toText(r.createdAt));
      } catch (err) {
        if (isUniqueViolation(err)) {
          throw new StoreError('conflict', `an issuer with id ${r.id} or name ${r.name} already exists`, {
            cause: err,
          });
        }
        throw err;
      }
    });
    this.ctx.notify('issuers');
  }

  /** Attach the certificate the offline root signed for this issuer's CSR. `notFound` if no such issuer. */
  async setIssuerCertificate(id: string, certDer: Uint8Array): Promise<void> {
    this.ctx.guard(() => {
      const result = this.ctx.stmt('UPDATE issuers SET cert_der = ? WHERE id = ?').run(certDer, id);
      if (result.changes === 0) throw new StoreError('notFound', `no issuer with id ${id}`);
    });
    this.ctx.notify('issuers');
  }

  /** The issuer with this id, or null. */
  async getIssuer(id: string): Promise<IssuerRecord | null> {
    return this.ctx.guard(() => {
      const row = this.ctx.stmt('SELECT * FROM issuers WHERE id = ?').get(id) as IssuerRow | undefined;
      return row === undefined ? null : toIssuerRecord(row);
    });
  }

  /** The issuer with this name, or null. */
  async getIssuerByName(name: string): Promise<IssuerRecord | null> {
    return this.ctx.guard(() => {
      const row = this.ctx.stmt('SELECT * FROM issuers WHERE name = ?').get(name) as IssuerRow | undefined;
      return row === undefined ? null : toIssuerRecord(row);
    });
  }

  /** The issuer that signs new certificates, or null before one has been activated. */
  async getActiveIssuer(): Promise<IssuerRecord | null> {
    return this.ctx.guard(() => {
      const row = this.ctx.stmt('SELECT * FROM issuers WHERE active = 1').get() as IssuerRow | undefined;
      return row === undefined ? null : toIssuerRecord(row);
    });
  }

  /** All issuers, oldest first. */
  async listIssuers(): Promise<IssuerRecord[]> {
    return this.ctx.guard(() =>
      (this.ctx.stmt('SELECT * FROM issuers ORDER BY created_at, id').all() as IssuerRow[]).map(toIssuerRecord),
    );
  }

  /**
   * Make this issuer the one that signs, deactivating any other in the same transaction so there
   * is never a moment with two (the partial unique index enforces it too). `notFound` if the issuer
   * does not exist or has no certificate yet: an issuer cannot sign before the root has signed it.
   */
  async activateIssuer(id: string, at: Date): Promise<void> {
    this.ctx.guard(() => this.activateTransaction.immediate(id, at));
    this.ctx.notify('issuers');
  }

  private activateInTransaction(id: string, at: Date): void {
    const row = this.ctx.stmt('SELECT cert_der IS NOT NULL AS certified FROM issuers WHERE id = ?').get(id) as
      { certified: number } | undefined;
    if (row === undefined) throw new StoreError('notFound', `no issuer with id ${id}`);
    if (row.certified !== 1)
      throw new StoreError('notFound', `issuer ${id} has no certificate yet; cannot activate it`);
    this.ctx.stmt('UPDATE issuers SET active = 0 WHERE active = 1 AND id != ?').run(id);
    // Re-activating the active issuer keeps the time it first became active.
    this.ctx
      .stmt(
        'UPDATE issuers SET activated_at = CASE WHEN active = 1 THEN activated_at ELSE ? END, active = 1 WHERE id = ?',
      )
      .run(toText(at), id);
  }

  /**
   * The latest notAfter among the certificates an issuer signed, leaving out the given
   * provisioners (the CA's own OCSP responder certificates, which a retired issuer keeps signing
   * only for as long as it answers). Null when it signed none.
   */
  async lastCertificateExpiry(issuerId: string, exceptProvisioners: readonly string[] = []): Promise<Date | null> {
    return this.ctx.guard(() => {
      const excluded = exceptProvisioners.map(() => '?').join(', ');
      const sql = `SELECT MAX(not_after) FROM certificates WHERE issuer_id = ?${excluded === '' ? '' : ` AND provisioner NOT IN (${excluded})`}`;
      const value = this.ctx
        .stmt(sql)
        .pluck()
        .get(issuerId, ...exceptProvisioners) as string | null;
      return value === null ? null : new Date(value);
    });
  }

  // ── roots ──────────────────────────────────────────────────────────────────────────────────

  /** Trust a root certificate; adding the same DER twice is a no-op. Returns its SHA-256 fingerprint (hex). */
  async addRoot(certDer: Uint8Array, at: Date): Promise<string> {
    const fingerprint = createHash('sha256').update(certDer).digest('hex');
    this.ctx.guard(() =>
      this.ctx
        .stmt(
          'INSERT INTO roots (fingerprint, cert_der, added_at) VALUES (?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING',
        )
        .run(fingerprint, certDer, toText(at)),
    );
    this.ctx.notify('issuers');
    return fingerprint;
  }

  /** The trusted roots' DER, in the order they were added. */
  async listRoots(): Promise<Uint8Array[]> {
    return this.ctx.guard(
      () => this.ctx.stmt('SELECT cert_der FROM roots ORDER BY added_at, fingerprint').pluck().all() as Buffer[],
    );
  }
}
