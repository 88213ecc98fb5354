import { StoreError } from '../contracts/errors.js';
import type {
  CertificateRecord,
  CertificatesSince,
  ListCertificatesOptions,
  ReserveCertificateInput,
} from '../contracts/records.js';
import type { PgContext, Queryable } from './pg-context.js';
import { isForeignKeyViolation, isUniqueViolation } from './pg-errors.js';
import { certificateColumns, checkLimit, toCertificateRecord, type CertificateRow } from './pg-rows.js';

/**
 * Certificates from reservation to issuance, their lineages, and the spent one-time tokens, on
 * PostgreSQL. One transaction per reservation and one statement per completion: the group commit
 * of the SQLite engine shares an fsync among writers of one file, which PostgreSQL's own commit
 * pipeline already does across connections.
 */
export class PgCertificateRepository {
  constructor(private readonly ctx: PgContext) {}

  /**
   * First step of issuance (Boulder's order): in one transaction, spend the one-time token, record
   * the certificate we intend to sign (status `reserved`, no DER) and its audit entry. Either all
   * three are written or none: a spent token is `tokenReplayed` (by any instance: the primary key
   * of token_uses decides), a serial already used is `serialCollision` (and the token stays
   * unspent, so the caller may retry with a new serial), an unknown issuer is `notFound`, a blocked
   * key `keyBlocked`, a revoked parent `revoked`.
   */
  async reserveCertificate({ certificate: c, tokenUse, audit }: ReserveCertificateInput): Promise<void> {
    const spki = c.spkiSha256 ?? null;
    const renewedFrom = c.renewedFrom ?? null;
    await this.ctx.transaction(async (tx) => {
      // Before the checks below, so a revocation reaching this key or lineage is either committed
      // (and seen by them) or waits for this reservation (and reaches the certificate).
      if (spki !== null || renewedFrom !== null) await this.ctx.revocationGate(tx, 'shared');
      if (tokenUse !== undefined) {
        try {
          await tx.query('INSERT INTO token_uses (provisioner, jti, expires_at) VALUES ($1, $2, $3)', [
            tokenUse.provisioner,
            tokenUse.jti,
            tokenUse.expiresAt,
          ]);
        } catch (err) {
          if (isUniqueViolation(err))
            throw new StoreError(
              'tokenReplayed',
              `this token for provisioner ${tokenUse.provisioner} has already been used`,
              { cause: err },
            );
          throw err;
        }
      }
      await refuseBlockedOrRevoked(tx, spki, renewedFrom);
      try {
        await tx.query(
          `INSERT INTO certificates
             (serial, issuer_id, subject, names, not_before, not_after, der, provisioner, requester, status, created_at,
              issued_at, renewed_from, lineage, lineage_started_at, spki_sha256, tbs_der)
           VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, 'reserved', $9, NULL, $10, $11, $12, $13, $14)`,
          [
            c.serial,
            c.issuerId,
            c.subject,
            JSON.stringify(c.names),
            c.notBefore,
            c.notAfter,
            c.provisioner,
            c.requester,
            c.createdAt,
            renewedFrom,
            c.lineage ?? c.serial,
            c.lineageStartedAt ?? c.createdAt,
            spki,
            c.tbsDer ?? null,
          ],
        );
      } catch (err) {
        if (isUniqueViolation(err))
          throw new StoreError('serialCollision', `serial ${c.serial} is already in use`, { cause: err });
        if (isForeignKeyViolation(err, 'certificates_renewed_from_fkey'))
          throw new StoreError('notFound', `no certificate with serial ${renewedFrom} to renew`, { cause: err });
        if (isForeignKeyViolation(err))
          throw new StoreError('notFound', `no issuer with id ${c.issuerId}`, { cause: err });
        throw err;
      }
      await this.ctx.insertAudit(tx, audit);
    });
  }

  /**
   * Second step of issuance: store the signed DER and mark the reservation issued, in one
   * statement. `notFound` if there is no reserved certificate with this serial (never reserved,
   * or already completed: a serial is signed once).
   */
  async completeCertificate(serial: string, der: Uint8Array, issuedAt: Date): Promise<void> {
    const rows = await this.ctx.query(
      `UPDATE certificates SET der = $1, status = 'issued', issued_at = $2
       WHERE serial = $3 AND status = 'reserved' RETURNING serial`,
      [der, issuedAt, serial],
    );
    if (rows.length === 0) throw new StoreError('notFound', `no reserved certificate with serial ${serial}`);
  }

  /** The certificate with this serial (lowercase hex), reserved or issued, or null. */
  async getCertificate(serial: string): Promise<CertificateRecord | null> {
    const [row] = await this.ctx.query<CertificateRow>(
      `SELECT ${certificateColumns} FROM certificates WHERE serial = $1`,
      [serial],
    );
    return row === undefined ? null : toCertificateRecord(row);
  }

  /** Every certificate of a lineage (named by the serial that started it), oldest first. */
  async listLineage(lineage: string): Promise<CertificateRecord[]> {
    const rows = await this.ctx.query<CertificateRow>(
      `SELECT ${certificateColumns} FROM certificates WHERE lineage = $1 ORDER BY created_at, seq`,
      [lineage],
    );
    return rows.map(toCertificateRecord);
  }

  /** Certificates in the order they were reserved, optionally only one status and/or expiring before a time. */
  async listCertificates(opts: ListCertificatesOptions = {}): Promise<CertificateRecord[]> {
    const params: unknown[] = [checkLimit(opts.limit)];
    const where: string[] = [];
    if (opts.status !== undefined) {
      params.push(opts.status);
      where.push(`status = $${params.length}`);
    }
    if (opts.expiringBefore !== undefined) {
      params.push(opts.expiringBefore);
      where.push(`not_after < $${params.length}`);
    }
    const rows = await this.ctx.query<CertificateRow>(
      `SELECT ${certificateColumns} FROM certificates ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY created_at, seq LIMIT $1`,
      params,
    );
    return rows.map(toCertificateRecord);
  }

  /** Certificates `provisioner` recorded for `requester` after `since`, and the oldest of them (index 0004). */
  async countCertificatesSince(provisioner: string, requester: string, since: Date): Promise<CertificatesSince> {
    const [row] = await this.ctx.query<{ count: number; oldest: Date | null }>(
      `SELECT count(*)::int AS count, min(created_at) AS oldest FROM certificates
       WHERE provisioner = $1 AND requester = $2 AND created_at > $3`,
      [provisioner, requester, since],
    );
    return { count: row?.count ?? 0, oldest: row?.oldest ?? null };
  }

  /**
   * Forget spent tokens whose `expires_at` is before `now`. The authority records there the last
   * instant a token could verify (exp plus clock skew), so a forgotten token is refused as
   * expired anyway. Returns how many.
   */
  async pruneTokenUses(now: Date): Promise<number> {
    const [row] = await this.ctx.query<{ pruned: number }>(
      'WITH pruned AS (DELETE FROM token_uses WHERE expires_at < $1 RETURNING 1) SELECT count(*)::int AS pruned FROM pruned',
      [now],
    );
    return row?.pruned ?? 0;
  }
}

/** `keyBlocked` when the key was revoked for keyCompromise, `revoked` when the certificate renewed from was revoked. */
async function refuseBlockedOrRevoked(tx: Queryable, spki: string | null, renewedFrom: string | null): Promise<void> {
  if (spki === null && renewedFrom === null) return;
  const { rows } = await tx.query<{ blocked: boolean; reason: string | null }>(
    `SELECT EXISTS (SELECT 1 FROM blocked_keys WHERE spki_sha256 = $1) AS blocked,
            (SELECT reason FROM revocations WHERE serial = $2) AS reason`,
    [spki, renewedFrom],
  );
  const row = rows[0];
  if (row?.blocked === true)
    throw new StoreError('keyBlocked', 'this public key was revoked for keyCompromise and is blocked');
  if (row?.reason !== null && row?.reason !== undefined)
    throw new StoreError('revoked', `certificate ${renewedFrom} was revoked (${row.reason}); it cannot renew`);
}
