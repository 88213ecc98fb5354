import type Database from 'better-sqlite3';
import { StoreError } from './errors.js';
import type { AuditEntry, TokenUse } from './records.js';
import { fromText, toText } from './rows.js';
import { isForeignKeyViolation, isUniqueViolation } from './sqlite-errors.js';

export interface RevocationRecord {
  serial: string;
  revokedAt: Date;
  reason: string;
  actor: string;
}

/** An entry as a CRL needs it; `reason` is the RFC 5280 reason name. */
export interface CrlEntryRecord {
  serial: string;
  revokedAt: Date;
  reason: string;
}

export interface CrlRecord {
  issuerId: string;
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: number;
  der: Uint8Array;
}

export interface RootCrlRecord {
  rootFingerprint: string;
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  der: Uint8Array;
  importedAt: Date;
}

export interface OcspSignerRecord {
  id: string;
  issuerId: string;
  sealedKey: Uint8Array;
  csrDer: Uint8Array;
  certDer: Uint8Array | null;
  createdAt: Date;
}

/** What the repository borrows from the store: one connection, its statement cache and audit. */
export interface RepositoryContext {
  db: Database.Database;
  stmt(sql: string): Database.Statement;
  guard<T>(operation: () => T): T;
  insertAudit(e: AuditEntry): void;
}

interface CrlRow { issuer_id: string; number: number | bigint; this_update: string; next_update: string; entries: number; der: Buffer }
interface RootCrlRow { root_fingerprint: string; number: number | bigint; this_update: string; next_update: string; der: Buffer; imported_at: string }
interface OcspSignerRow { id: string; issuer_id: string; sealed_key: Buffer; csr_der: Buffer; cert_der: Buffer | null; created_at: string }

const toCrl = (r: CrlRow): CrlRecord => ({ issuerId: r.issuer_id, number: BigInt(r.number), thisUpdate: fromText(r.this_update), nextUpdate: fromText(r.next_update), entries: r.entries, der: r.der });
const toRootCrl = (r: RootCrlRow): RootCrlRecord => ({ rootFingerprint: r.root_fingerprint, number: BigInt(r.number), thisUpdate: fromText(r.this_update), nextUpdate: fromText(r.next_update), der: r.der, importedAt: fromText(r.imported_at) });
const toSigner = (r: OcspSignerRow): OcspSignerRecord => ({ id: r.id, issuerId: r.issuer_id, sealedKey: r.sealed_key, csrDer: r.csr_der, certDer: r.cert_der, createdAt: fromText(r.created_at) });

/**
 * Revocation state on the store's SQLite connection: revocations (first one wins), the CRLs each
 * intermediate published (numbers only grow), imported root CRLs, and root-delegated OCSP signers.
 */
export class RevocationRepository {
  private readonly revokeTransaction: Database.Transaction<(r: RevocationRecord, audit: AuditEntry, tokenUse?: TokenUse) => { record: RevocationRecord; alreadyRevoked: boolean }>;

  constructor(private readonly ctx: RepositoryContext) {
    this.revokeTransaction = ctx.db.transaction((r: RevocationRecord, audit: AuditEntry, tokenUse?: TokenUse) => {
      if (tokenUse !== undefined) {
        try {
          ctx.stmt('INSERT INTO token_uses (provisioner, jti, expires_at) VALUES (?, ?, ?)').run(tokenUse.provisioner, tokenUse.jti, toText(tokenUse.expiresAt));
        } catch (err) {
          if (isUniqueViolation(err)) throw new StoreError('tokenReplayed', `this token for provisioner ${tokenUse.provisioner} has already been used`, { cause: err });
          throw err;
        }
      }
      const issued = ctx.stmt("SELECT status FROM certificates WHERE serial = ?").pluck().get(r.serial) as string | undefined;
      if (issued !== 'issued') throw new StoreError('notFound', `no issued certificate with serial ${r.serial}`);
      const existing = this.getSync(r.serial);
      if (existing !== null) return { record: existing, alreadyRevoked: true };
      ctx.stmt('INSERT INTO revocations (serial, revoked_at, reason, actor) VALUES (?, ?, ?, ?)').run(r.serial, toText(r.revokedAt), r.reason, r.actor);
      ctx.insertAudit(audit);
      return { record: r, alreadyRevoked: false };
    });
  }

  /**
   * Records a revocation and its audit entry in one transaction, spending the one-time token that
   * authorised it if any (a replay is `tokenReplayed`). Revoking twice keeps the first time and
   * reason (`alreadyRevoked` says so); an unknown serial is `notFound`, and writes nothing.
   */
  async revoke(r: RevocationRecord, audit: AuditEntry, tokenUse?: TokenUse): Promise<{ record: RevocationRecord; alreadyRevoked: boolean }> {
    return this.ctx.guard(() => this.revokeTransaction.immediate(r, audit, tokenUse));
  }

  private getSync(serial: string): RevocationRecord | null {
    const row = this.ctx.stmt('SELECT serial, revoked_at, reason, actor FROM revocations WHERE serial = ?').get(serial) as
      | { serial: string; revoked_at: string; reason: string; actor: string }
      | undefined;
    return row === undefined ? null : { serial: row.serial, revokedAt: fromText(row.revoked_at), reason: row.reason, actor: row.actor };
  }

  /** The revocation of this serial, or null. */
  async get(serial: string): Promise<RevocationRecord | null> {
    return this.ctx.guard(() => this.getSync(serial));
  }

  /**
   * The entries an intermediate's next CRL lists: its revoked certificates that had not expired
   * when its previous CRL was issued. Each entry so stays until one CRL issued after its
   * certificate expired has carried it (RFC 5280 §3.3), then leaves.
   */
  async listForCrl(issuerId: string, previousThisUpdate: Date | null): Promise<CrlEntryRecord[]> {
    return this.ctx.guard(() => {
      const rows = this.ctx
        .stmt(
          `SELECT r.serial, r.revoked_at, r.reason FROM revocations r JOIN certificates c ON c.serial = r.serial
           WHERE c.issuer_id = ? AND c.not_after >= ? ORDER BY r.revoked_at, r.serial`,
        )
        .raw()
        .all(issuerId, previousThisUpdate === null ? '' : toText(previousThisUpdate)) as Array<[string, string, string]>;
      return rows.map(([serial, at, reason]) => ({ serial, revokedAt: fromText(at), reason }));
    });
  }

  /** Every revocation, newest first (for `shortleaf certs list --revoked`). */
  async list(): Promise<RevocationRecord[]> {
    return this.ctx.guard(() =>
      (this.ctx.stmt('SELECT serial, revoked_at, reason, actor FROM revocations ORDER BY revoked_at DESC').all() as Array<{ serial: string; revoked_at: string; reason: string; actor: string }>).map(
        (row) => ({ serial: row.serial, revokedAt: fromText(row.revoked_at), reason: row.reason, actor: row.actor }),
      ),
    );
  }

  /** Revocations recorded after `afterRowid` (by any process), so a server notices the CLI's. */
  async since(afterRowid: number): Promise<Array<{ rowid: number; serial: string }>> {
    return this.ctx.guard(() => this.ctx.stmt('SELECT rowid, serial FROM revocations WHERE rowid > ? ORDER BY rowid').all(afterRowid) as Array<{ rowid: number; serial: string }>);
  }

  // ── CRLs ─────────────────────────────────────────────────────────────────────────────────────

  /** The newest CRL this intermediate published, or null. */
  async latestCrl(issuerId: string): Promise<CrlRecord | null> {
    return this.ctx.guard(() => {
      const row = this.ctx.stmt('SELECT * FROM crls WHERE issuer_id = ? ORDER BY number DESC LIMIT 1').safeIntegers(true).get(issuerId) as CrlRow | undefined;
      return row === undefined ? null : toCrl(row);
    });
  }

  /** Records a published CRL; a number already used is `conflict` (numbers never repeat). */
  async insertCrl(r: CrlRecord): Promise<void> {
    this.ctx.guard(() => {
      try {
        this.ctx
          .stmt('INSERT INTO crls (issuer_id, number, this_update, next_update, entries, der) VALUES (?, ?, ?, ?, ?, ?)')
          .run(r.issuerId, r.number, toText(r.thisUpdate), toText(r.nextUpdate), r.entries, r.der);
      } catch (err) {
        if (isUniqueViolation(err)) throw new StoreError('conflict', `CRL number ${r.number} of issuer ${r.issuerId} is already used`, { cause: err });
        throw err;
      }
    });
  }

  /** Drops all but the newest `keep` CRLs of an issuer: old ones are never served again. */
  async pruneCrls(issuerId: string, keep: number): Promise<void> {
    this.ctx.guard(() =>
      this.ctx.stmt('DELETE FROM crls WHERE issuer_id = ? AND number NOT IN (SELECT number FROM crls WHERE issuer_id = ? ORDER BY number DESC LIMIT ?)').run(issuerId, issuerId, keep),
    );
  }

  // ── root CRLs ────────────────────────────────────────────────────────────────────────────────

  /** Stores a root CRL signed offline; the caller has checked its signature and number. */
  async importRootCrl(r: RootCrlRecord): Promise<void> {
    this.ctx.guard(() => {
      try {
        this.ctx
          .stmt('INSERT INTO root_crls (root_fingerprint, number, this_update, next_update, der, imported_at) VALUES (?, ?, ?, ?, ?, ?)')
          .run(r.rootFingerprint, r.number, toText(r.thisUpdate), toText(r.nextUpdate), r.der, toText(r.importedAt));
      } catch (err) {
        if (isUniqueViolation(err)) throw new StoreError('conflict', `root CRL number ${r.number} was already imported`, { cause: err });
        if (isForeignKeyViolation(err)) throw new StoreError('notFound', 'the root of this CRL is not one of our roots', { cause: err });
        throw err;
      }
    });
  }

  /** The root CRL with the highest number for a root, or null. */
  async latestRootCrl(rootFingerprint: string): Promise<RootCrlRecord | null> {
    return this.ctx.guard(() => {
      const row = this.ctx.stmt('SELECT * FROM root_crls WHERE root_fingerprint = ? ORDER BY number DESC LIMIT 1').safeIntegers(true).get(rootFingerprint) as RootCrlRow | undefined;
      return row === undefined ? null : toRootCrl(row);
    });
  }

  // ── root-delegated OCSP signers ──────────────────────────────────────────────────────────────

  async createOcspSigner(r: Omit<OcspSignerRecord, 'certDer'>): Promise<void> {
    this.ctx.guard(() =>
      this.ctx.stmt('INSERT INTO ocsp_signers (id, issuer_id, sealed_key, csr_der, cert_der, created_at) VALUES (?, ?, ?, ?, NULL, ?)').run(r.id, r.issuerId, r.sealedKey, r.csrDer, toText(r.createdAt)),
    );
  }

  async setOcspSignerCertificate(id: string, certDer: Uint8Array): Promise<void> {
    this.ctx.guard(() => {
      if (this.ctx.stmt('UPDATE ocsp_signers SET cert_der = ? WHERE id = ?').run(certDer, id).changes === 0) throw new StoreError('notFound', `no OCSP signer ${id}`);
    });
  }

  /** The newest root-delegated OCSP signer of an intermediate (with or without its certificate). */
  async getOcspSigner(issuerId: string): Promise<OcspSignerRecord | null> {
    return this.ctx.guard(() => {
      const row = this.ctx.stmt('SELECT * FROM ocsp_signers WHERE issuer_id = ? ORDER BY created_at DESC LIMIT 1').get(issuerId) as OcspSignerRow | undefined;
      return row === undefined ? null : toSigner(row);
    });
  }
}
