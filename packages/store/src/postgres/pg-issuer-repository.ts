import { createHash } from 'node:crypto';
import { StoreError } from '../contracts/errors.js';
import type { IssuerRecord, NewIssuer } from '../contracts/records.js';
import { advisoryKey, type PgContext } from './pg-context.js';
import { isUniqueViolation } from './pg-errors.js';
import { toIssuerRecord, type IssuerRow } from './pg-rows.js';

/**
 * Intermediate issuers (one active at a time) and the trusted roots, on PostgreSQL. Every write
 * sends an 'issuers' notice in its transaction, so other instances pick up a new certificate,
 * an activation (and with it their own HTTPS certificate) or a new root within a second.
 */
export class PgIssuerRepository {
  constructor(private readonly ctx: PgContext) {}

  /** Record a new issuer (not yet certified, not active). `conflict` if its id or name is taken. */
  async createIssuer(r: NewIssuer): Promise<void> {
    try {
      await this.ctx.transaction(async (tx) => {
        await tx.query(
          `INSERT INTO issuers (id, name, sealed_key, key_algorithm, csr_der, created_at)
           VALUES ($1, $2, $3, $4, $5, $6)`,
          [r.id, r.name, r.sealedKey, r.keyAlgorithm, r.csrDer, r.createdAt],
        );
        await this.ctx.notify(tx, 'issuers');
      });
    } catch (err) {
      if (isUniqueViolation(err))
        throw new StoreError('conflict', `an issuer with id ${r.id} or name ${r.name} already exists`, { cause: err });
      throw err;
    }
  }

  /** Attach the certificate the offline root signed for this issuer's CSR. `notFound` if no such issuer. */
  async setIssuerCertificate(id: string, certDer: Uint8Array): Promise<void> {
    await this.ctx.transaction(async (tx) => {
      const result = await tx.query('UPDATE issuers SET cert_der = $1 WHERE id = $2', [certDer, id]);
      if (result.rowCount === 0) throw new StoreError('notFound', `no issuer with id ${id}`);
      await this.ctx.notify(tx, 'issuers');
    });
  }

  /** The issuer with this id, or null. */
  async getIssuer(id: string): Promise<IssuerRecord | null> {
    const [row] = await this.ctx.query<IssuerRow>('SELECT * FROM issuers WHERE id = $1', [id]);
    return row === undefined ? null : toIssuerRecord(row);
  }

  /** The issuer with this name, or null. */
  async getIssuerByName(name: string): Promise<IssuerRecord | null> {
    const [row] = await this.ctx.query<IssuerRow>('SELECT * FROM issuers WHERE name = $1', [name]);
    return row === undefined ? null : toIssuerRecord(row);
  }

  /** The issuer that signs new certificates, or null before one has been activated. */
  async getActiveIssuer(): Promise<IssuerRecord | null> {
    const [row] = await this.ctx.query<IssuerRow>('SELECT * FROM issuers WHERE active');
    return row === undefined ? null : toIssuerRecord(row);
  }

  /** All issuers, oldest first. */
  async listIssuers(): Promise<IssuerRecord[]> {
    const rows = await this.ctx.query<IssuerRow>('SELECT * FROM issuers ORDER BY created_at, id COLLATE "C"');
    return rows.map(toIssuerRecord);
  }

  /**
   * Make this issuer the one that signs, deactivating any other in the same transaction so there
   * is never a moment with two (the partial unique index enforces it too). Activations take one
   * lock for the length of their transaction, so two racing from two instances run one after the
   * other, the second seeing what the first committed, rather than both clearing `active` and one
   * failing on the index. `notFound` if the issuer does not exist or has no certificate yet: an
   * issuer cannot sign before the root has signed it.
   */
  async activateIssuer(id: string, at: Date): Promise<void> {
    await this.ctx.transaction(async (tx) => {
      await tx.query(`SELECT pg_advisory_xact_lock(${advisoryKey('$1')})`, ['issuers:activate']);
      const { rows } = await tx.query<{ certified: boolean }>(
        'SELECT cert_der IS NOT NULL AS certified FROM issuers WHERE id = $1',
        [id],
      );
      const row = rows[0];
      if (row === undefined) throw new StoreError('notFound', `no issuer with id ${id}`);
      if (!row.certified) throw new StoreError('notFound', `issuer ${id} has no certificate yet; cannot activate it`);
      await tx.query('UPDATE issuers SET active = false WHERE active AND id <> $1', [id]);
      // Re-activating the active issuer keeps the time it first became active.
      await tx.query(
        'UPDATE issuers SET activated_at = CASE WHEN active THEN activated_at ELSE $1 END, active = true WHERE id = $2',
        [at, id],
      );
      await this.ctx.notify(tx, 'issuers');
    });
  }

  /**
   * The latest notAfter among the certificates an issuer signed, leaving out the given
   * provisioners (the CA's own OCSP responder certificates, which a retired issuer keeps signing
   * only for as long as it answers). Null when it signed none.
   */
  async lastCertificateExpiry(issuerId: string, exceptProvisioners: readonly string[] = []): Promise<Date | null> {
    const [row] = await this.ctx.query<{ last: Date | null }>(
      'SELECT MAX(not_after) AS last FROM certificates WHERE issuer_id = $1 AND NOT (provisioner = ANY ($2::text[]))',
      [issuerId, [...exceptProvisioners]],
    );
    return row?.last ?? null;
  }

  // ── roots ──────────────────────────────────────────────────────────────────────────────────

  /** Trust a root certificate; adding the same DER twice is a no-op. Returns its SHA-256 fingerprint (hex). */
  async addRoot(certDer: Uint8Array, at: Date): Promise<string> {
    const fingerprint = createHash('sha256').update(certDer).digest('hex');
    await this.ctx.transaction(async (tx) => {
      const result = await tx.query(
        'INSERT INTO roots (fingerprint, cert_der, added_at) VALUES ($1, $2, $3) ON CONFLICT (fingerprint) DO NOTHING',
        [fingerprint, certDer, at],
      );
      if (result.rowCount !== 0) await this.ctx.notify(tx, 'issuers');
    });
    return fingerprint;
  }

  /** The trusted roots' DER, in the order they were added. */
  async listRoots(): Promise<Uint8Array[]> {
    const rows = await this.ctx.query<{ cert_der: Buffer }>(
      'SELECT cert_der FROM roots ORDER BY added_at, fingerprint COLLATE "C"',
    );
    return rows.map((r) => r.cert_der);
  }
}
