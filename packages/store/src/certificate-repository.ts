import { StoreError } from './errors.js';
import type {
  CertificateRecord,
  CertificatesSince,
  ListCertificatesOptions,
  ReserveCertificateInput,
} from './contracts/records.js';
import { GroupCommitter } from './group-commit.js';
import { fromText, toCertificateRecord, toText } from './rows.js';
import type { CertificateRow } from './rows.js';
import { checkLimit, type RepositoryContext } from './sqlite-context.js';
import { isForeignKeyViolation, isUniqueViolation, toStorageError } from './sqlite-errors.js';

/**
 * Certificates from reservation to issuance, their lineages, and the spent one-time tokens, on the
 * store's SQLite connection. Issuance writes go through one group committer, so concurrent
 * requests share a transaction (and an fsync) while each keeps its own savepoint.
 */
export class CertificateRepository {
  private readonly issuanceWrites: GroupCommitter;

  constructor(private readonly ctx: RepositoryContext) {
    this.issuanceWrites = new GroupCommitter(ctx.db, (err) => (err instanceof StoreError ? err : toStorageError(err)));
  }

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
        this.ctx
          .stmt('INSERT INTO token_uses (provisioner, jti, expires_at) VALUES (?, ?, ?)')
          .run(tokenUse.provisioner, tokenUse.jti, toText(tokenUse.expiresAt));
      } catch (err) {
        if (isUniqueViolation(err)) {
          throw new StoreError(
            'tokenReplayed',
            `this token for provisioner ${tokenUse.provisioner} has already been used`,
            {
              cause: err,
            },
          );
        }
        throw err;
      }
    }
    // Checked under the write lock, in the same transaction as the reservation: a key blocked or a
    // parent revoked a moment ago cannot slip in between a check and the insert. A throw here rolls
    // back this write's savepoint, so the token stays unspent.
    const spki = c.spkiSha256 ?? null;
    if (spki !== null && this.ctx.stmt('SELECT 1 FROM blocked_keys WHERE spki_sha256 = ?').get(spki) !== undefined) {
      throw new StoreError('keyBlocked', 'this public key was revoked for keyCompromise and is blocked');
    }
    const renewedFrom = c.renewedFrom ?? null;
    if (renewedFrom !== null) {
      const reason = this.ctx.stmt('SELECT reason FROM revocations WHERE serial = ?').pluck().get(renewedFrom) as
        string | undefined;
      if (reason !== undefined)
        throw new StoreError('revoked', `certificate ${renewedFrom} was revoked (${reason}); it cannot renew`);
    }
    try {
      this.ctx
        .stmt(
          `INSERT INTO certificates
           (serial, issuer_id, subject, names, not_before, not_after, der, provisioner, requester, status, created_at, issued_at,
            renewed_from, lineage, lineage_started_at, spki_sha256, tbs_der)
         VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, 'reserved', ?, NULL, ?, ?, ?, ?, ?)`,
        )
        .run(
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
      if (isUniqueViolation(err))
        throw new StoreError('serialCollision', `serial ${c.serial} is already in use`, { cause: err });
      if (isForeignKeyViolation(err))
        throw new StoreError('notFound', `no issuer with id ${c.issuerId}`, { cause: err });
      throw err;
    }
    this.ctx.insertAudit(audit);
  }

  /**
   * Second step of issuance: store the signed DER and mark the reservation issued, in one
   * statement. `notFound` if there is no reserved certificate with this serial (never reserved,
   * or already completed: a serial is signed once).
   */
  async completeCertificate(serial: string, der: Uint8Array, issuedAt: Date): Promise<void> {
    return this.issuanceWrites.submit(() => {
      const result = this.ctx
        .stmt(
          "UPDATE certificates SET der = ?, status = 'issued', issued_at = ? WHERE serial = ? AND status = 'reserved'",
        )
        .run(der, toText(issuedAt), serial);
      if (result.changes === 0) throw new StoreError('notFound', `no reserved certificate with serial ${serial}`);
    });
  }

  /** The certificate with this serial (lowercase hex), reserved or issued, or null. */
  async getCertificate(serial: string): Promise<CertificateRecord | null> {
    return this.ctx.guard(() => {
      const row = this.ctx.stmt('SELECT * FROM certificates WHERE serial = ?').get(serial) as
        CertificateRow | undefined;
      return row === undefined ? null : toCertificateRecord(row);
    });
  }

  /** Every certificate of a lineage (named by the serial that started it), oldest first. */
  async listLineage(lineage: string): Promise<CertificateRecord[]> {
    return this.ctx.guard(() =>
      (
        this.ctx
          .stmt('SELECT * FROM certificates WHERE lineage = ? ORDER BY created_at, rowid')
          .all(lineage) as CertificateRow[]
      ).map(toCertificateRecord),
    );
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
    return this.ctx.guard(() => (this.ctx.stmt(sql).all(params) as CertificateRow[]).map(toCertificateRecord));
  }

  /** Certificates `provisioner` recorded for `requester` after `since`, and the oldest of them (index 0010). */
  async countCertificatesSince(provisioner: string, requester: string, since: Date): Promise<CertificatesSince> {
    return this.ctx.guard(() => {
      const row = this.ctx
        .stmt(
          `SELECT COUNT(*) AS count, MIN(created_at) AS oldest FROM certificates
           WHERE provisioner = ? AND requester = ? AND created_at > ?`,
        )
        .get(provisioner, requester, toText(since)) as { count: number; oldest: string | null };
      return { count: row.count, oldest: row.oldest === null ? null : fromText(row.oldest) };
    });
  }

  /**
   * Forget spent tokens whose `expires_at` is before `now`. The authority records there the last
   * instant a token could verify (exp plus clock skew), so a forgotten token is refused as
   * expired anyway. Returns how many.
   */
  async pruneTokenUses(now: Date): Promise<number> {
    return this.ctx.guard(() => this.ctx.stmt('DELETE FROM token_uses WHERE expires_at < ?').run(toText(now)).changes);
  }
}
