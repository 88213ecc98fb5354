import type Database from 'better-sqlite3';
import { StoreError } from './errors.js';
import type { AuditEntry, TokenUse } from './records.js';
import type { RevocationsEngine } from './contracts/store.js';
import type {
  BlockedKeyRecord,
  ChangeCursor,
  CrlEntryRecord,
  CrlRecord,
  OcspSignerRecord,
  RevocationChange,
  RevocationOutcome,
  RevocationReach,
  RevocationRecord,
  RootCrlRecord,
} from './contracts/revocations.js';

export type {
  BlockedKeyRecord,
  CrlEntryRecord,
  CrlRecord,
  OcspSignerRecord,
  RevocationOutcome,
  RevocationReach,
  RevocationRecord,
  RootCrlRecord,
} from './contracts/revocations.js';
import { fromText, toText } from './rows.js';
import type { RepositoryContext } from './sqlite-context.js';
import { isForeignKeyViolation, isUniqueViolation } from './sqlite-errors.js';
import { parseChangeCursor, reasonUpgrades } from './engine-rules.js';

/** Only keyCompromise replaces an earlier reason: it is the one relying parties must learn of. */

interface CrlRow {
  issuer_id: string;
  number: number | bigint;
  this_update: string;
  next_update: string;
  /** A bigint: the query reads safe integers for the CRL number. */
  entries: number | bigint;
  der: Buffer;
}
interface RootCrlRow {
  root_fingerprint: string;
  number: number | bigint;
  this_update: string;
  next_update: string;
  der: Buffer;
  imported_at: string;
}
interface OcspSignerRow {
  id: string;
  issuer_id: string;
  sealed_key: Buffer;
  csr_der: Buffer;
  cert_der: Buffer | null;
  created_at: string;
}

const toCrl = (r: CrlRow): CrlRecord => ({
  issuerId: r.issuer_id,
  number: BigInt(r.number),
  thisUpdate: fromText(r.this_update),
  nextUpdate: fromText(r.next_update),
  entries: Number(r.entries),
  der: r.der,
});
const toRootCrl = (r: RootCrlRow): RootCrlRecord => ({
  rootFingerprint: r.root_fingerprint,
  number: BigInt(r.number),
  thisUpdate: fromText(r.this_update),
  nextUpdate: fromText(r.next_update),
  der: r.der,
  importedAt: fromText(r.imported_at),
});
const toSigner = (r: OcspSignerRow): OcspSignerRecord => ({
  id: r.id,
  issuerId: r.issuer_id,
  sealedKey: r.sealed_key,
  csrDer: r.csr_der,
  certDer: r.cert_der,
  createdAt: fromText(r.created_at),
});

const NO_REACH: RevocationReach = { lineage: false, key: false };

// Set under the write lock (every write here is an IMMEDIATE transaction), so revisions are
// unique and a later change always has a larger one.
const NEXT_REVISION = '(SELECT COALESCE(MAX(revision), 0) + 1 FROM revocations)';

/**
 * Revocation state on the store's SQLite connection: revocations (first one wins, except that
 * keyCompromise may replace another reason), their reach over lineages and keys, blocked keys, the
 * CRLs each intermediate published (numbers only grow), imported root CRLs, and root-delegated
 * OCSP signers.
 */
export class RevocationRepository implements RevocationsEngine {
  private readonly revokeTransaction: Database.Transaction<
    (
      r: RevocationRecord,
      audit: AuditEntry,
      tokenUse: TokenUse | undefined,
      reach: RevocationReach,
    ) => RevocationOutcome
  >;

  constructor(private readonly ctx: RepositoryContext) {
    this.revokeTransaction = ctx.db.transaction(
      (
        r: RevocationRecord,
        audit: AuditEntry,
        tokenUse: TokenUse | undefined,
        reach: RevocationReach,
      ): RevocationOutcome => {
        if (tokenUse !== undefined) {
          try {
            ctx
              .stmt('INSERT INTO token_uses (provisioner, jti, expires_at) VALUES (?, ?, ?)')
              .run(tokenUse.provisioner, tokenUse.jti, toText(tokenUse.expiresAt));
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
        const target = ctx
          .stmt('SELECT status, lineage, spki_sha256 FROM certificates WHERE serial = ?')
          .get(r.serial) as { status: string; lineage: string; spki_sha256: string | null } | undefined;
        if (target?.status !== 'issued')
          throw new StoreError('notFound', `no issued certificate with serial ${r.serial}`);
        const existing = this.getSync(r.serial);
        let record: RevocationRecord;
        let previousReason: string | undefined;
        if (existing === null) {
          ctx
            .stmt(
              `INSERT INTO revocations (serial, revoked_at, reason, actor, revision) VALUES (?, ?, ?, ?, ${NEXT_REVISION})`,
            )
            .run(r.serial, toText(r.revokedAt), r.reason, r.actor);
          record = r;
        } else if (reasonUpgrades(existing.reason, r.reason)) {
          record = this.upgrade(existing, r.actor);
          previousReason = existing.reason;
        } else {
          return { record: existing, alreadyRevoked: true, also: [] };
        }
        ctx.insertAudit(
          previousReason === undefined ? audit : { ...audit, detail: { ...audit.detail, previousReason } },
        );
        const also: RevocationRecord[] = [];
        for (const serial of this.reached(r.serial, target.lineage, target.spki_sha256, reach, r.revokedAt)) {
          const before = this.getSync(serial);
          let done: RevocationRecord | null = null;
          if (before === null) {
            done = { serial, revokedAt: r.revokedAt, reason: r.reason, actor: r.actor };
            ctx
              .stmt(
                `INSERT INTO revocations (serial, revoked_at, reason, actor, revision) VALUES (?, ?, ?, ?, ${NEXT_REVISION})`,
              )
              .run(serial, toText(r.revokedAt), r.reason, r.actor);
          } else if (reasonUpgrades(before.reason, r.reason)) {
            done = this.upgrade(before, r.actor);
          }
          if (done === null) continue;
          also.push(done);
          ctx.insertAudit({
            at: audit.at,
            action: 'revoke',
            actor: r.actor,
            serial,
            detail: {
              ...audit.detail,
              reason: r.reason,
              reachedFrom: r.serial,
              ...(before === null ? {} : { previousReason: before.reason }),
            },
          });
        }
        if (reach.key && target.spki_sha256 !== null) {
          ctx
            .stmt('INSERT OR IGNORE INTO blocked_keys (spki_sha256, reason, serial, blocked_at) VALUES (?, ?, ?, ?)')
            .run(target.spki_sha256, r.reason, r.serial, toText(r.revokedAt));
        }
        return { record, alreadyRevoked: false, ...(previousReason === undefined ? {} : { previousReason }), also };
      },
    );
  }

  /**
   * The live (unexpired) certificates a revocation reaches besides its own: with `lineage`, those
   * of its lineage; with `key`, every certificate with the same key and every lineage such a
   * certificate belongs to, since whoever holds the key could have renewed any of them into a new
   * key. Reserved certificates count: one being signed now is revoked before anyone sees it.
   */
  private reached(serial: string, lineage: string, spki: string | null, reach: RevocationReach, now: Date): string[] {
    const at = toText(now);
    if (reach.key && spki !== null) {
      return this.ctx
        .stmt(
          `SELECT serial FROM certificates
           WHERE (spki_sha256 = @spki OR lineage = @lineage OR lineage IN (SELECT lineage FROM certificates WHERE spki_sha256 = @spki))
             AND not_after > @at AND serial != @serial
           ORDER BY created_at, rowid`,
        )
        .pluck()
        .all({ spki, lineage, at, serial }) as string[];
    }
    if (reach.lineage || reach.key) {
      return this.ctx
        .stmt(
          'SELECT serial FROM certificates WHERE lineage = ? AND not_after > ? AND serial != ? ORDER BY created_at, rowid',
        )
        .pluck()
        .all(lineage, at, serial) as string[];
    }
    return [];
  }

  /**
   * Moves a revocation to keyCompromise, keeping the time it was first revoked (Boulder's
   * UpdateRevokedCertificate does the same: the certificate stopped being trusted then). It takes
   * a new revision, the largest, so a server watching for changes (`changes`) re-signs its OCSP
   * answers and rebuilds its CRL for it as for a new one.
   */
  private upgrade(existing: RevocationRecord, actor: string): RevocationRecord {
    this.ctx
      .stmt(`UPDATE revocations SET reason = 'keyCompromise', actor = ?, revision = ${NEXT_REVISION} WHERE serial = ?`)
      .run(actor, existing.serial);
    return { ...existing, reason: 'keyCompromise', actor };
  }

  /**
   * Records a revocation and its audit entry in one transaction, spending the one-time token that
   * authorised it if any (a replay is `tokenReplayed`), and with it every certificate the `reach`
   * covers (each audited) and, for the key, its block. Revoking twice keeps the first time and
   * reason (`alreadyRevoked` says so), except that keyCompromise replaces any other reason (RFC
   * 5280 §5.3.1 lets a CRL entry's reason change; relying parties need to learn of the key). An
   * unknown serial is `notFound`, and writes nothing.
   */
  async revoke(
    r: RevocationRecord,
    audit: AuditEntry,
    tokenUse?: TokenUse,
    reach: RevocationReach = NO_REACH,
  ): Promise<RevocationOutcome> {
    const outcome = this.ctx.guard(() => this.revokeTransaction.immediate(r, audit, tokenUse, reach));
    this.ctx.notify('revocations');
    return outcome;
  }

  /** The block on a key digest, or null. */
  async blockedKey(spkiSha256: string): Promise<BlockedKeyRecord | null> {
    return this.ctx.guard(() => {
      const row = this.ctx
        .stmt('SELECT spki_sha256, reason, serial, blocked_at FROM blocked_keys WHERE spki_sha256 = ?')
        .get(spkiSha256) as
        { spki_sha256: string; reason: string; serial: string | null; blocked_at: string } | undefined;
      return row === undefined
        ? null
        : { spkiSha256: row.spki_sha256, reason: row.reason, serial: row.serial, blockedAt: fromText(row.blocked_at) };
    });
  }

  private getSync(serial: string): RevocationRecord | null {
    const row = this.ctx
      .stmt('SELECT serial, revoked_at, reason, actor FROM revocations WHERE serial = ?')
      .get(serial) as { serial: string; revoked_at: string; reason: string; actor: string } | undefined;
    return row === undefined
      ? null
      : { serial: row.serial, revokedAt: fromText(row.revoked_at), reason: row.reason, actor: row.actor };
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
        .all(issuerId, previousThisUpdate === null ? '' : toText(previousThisUpdate)) as Array<
        [string, string, string]
      >;
      return rows.map(([serial, at, reason]) => ({ serial, revokedAt: fromText(at), reason }));
    });
  }

  /** Every revocation, newest first (for `shortleaf certs list --revoked`). */
  async list(): Promise<RevocationRecord[]> {
    return this.ctx.guard(() =>
      (
        this.ctx
          .stmt('SELECT serial, revoked_at, reason, actor FROM revocations ORDER BY revoked_at DESC')
          .all() as Array<{ serial: string; revoked_at: string; reason: string; actor: string }>
      ).map((row) => ({
        serial: row.serial,
        revokedAt: fromText(row.revoked_at),
        reason: row.reason,
        actor: row.actor,
      })),
    );
  }

  /**
   * Revocations recorded or changed after `cursor` (by any process), so a server notices the
   * CLI's; null reads from the beginning. The cursor is the last revision seen, as decimal text.
   */
  async changes(cursor: ChangeCursor | null): Promise<RevocationChange[]> {
    const after = parseChangeCursor(cursor);
    return this.ctx.guard(() => {
      const rows = this.ctx
        .stmt('SELECT revision, serial FROM revocations WHERE revision > ? ORDER BY revision')
        .raw()
        .all(after) as Array<[number, string]>;
      return rows.map(([revision, serial]) => ({ serial, cursor: String(revision) }));
    });
  }

  /** Where `changes` would start to return only what is recorded from now on. */
  async changeCursor(): Promise<ChangeCursor> {
    return this.ctx.guard(() =>
      String((this.ctx.stmt('SELECT MAX(revision) FROM revocations').pluck().get() as number | null) ?? 0),
    );
  }

  // ── CRLs ─────────────────────────────────────────────────────────────────────────────────────

  /** The newest CRL this intermediate published, or null. */
  async latestCrl(issuerId: string): Promise<CrlRecord | null> {
    return this.ctx.guard(() => {
      const row = this.ctx
        .stmt('SELECT * FROM crls WHERE issuer_id = ? ORDER BY number DESC LIMIT 1')
        .safeIntegers(true)
        .get(issuerId) as CrlRow | undefined;
      return row === undefined ? null : toCrl(row);
    });
  }

  /** Records a published CRL; a number already used is `conflict` (numbers never repeat). */
  async insertCrl(r: CrlRecord): Promise<void> {
    this.ctx.guard(() => {
      try {
        this.ctx
          .stmt(
            'INSERT INTO crls (issuer_id, number, this_update, next_update, entries, der) VALUES (?, ?, ?, ?, ?, ?)',
          )
          .run(r.issuerId, r.number, toText(r.thisUpdate), toText(r.nextUpdate), r.entries, r.der);
      } catch (err) {
        if (isUniqueViolation(err))
          throw new StoreError('conflict', `CRL number ${r.number} of issuer ${r.issuerId} is already used`, {
            cause: err,
          });
        throw err;
      }
    });
    this.ctx.notify('crls');
  }

  /** Drops all but the newest `keep` CRLs of an issuer: old ones are never served again. */
  async pruneCrls(issuerId: string, keep: number): Promise<void> {
    this.ctx.guard(() =>
      this.ctx
        .stmt(
          'DELETE FROM crls WHERE issuer_id = ? AND number NOT IN (SELECT number FROM crls WHERE issuer_id = ? ORDER BY number DESC LIMIT ?)',
        )
        .run(issuerId, issuerId, keep),
    );
  }

  // ── root CRLs ────────────────────────────────────────────────────────────────────────────────

  /** Stores a root CRL signed offline; the caller has checked its signature and number. */
  async importRootCrl(r: RootCrlRecord): Promise<void> {
    this.ctx.guard(() => {
      try {
        this.ctx
          .stmt(
            'INSERT INTO root_crls (root_fingerprint, number, this_update, next_update, der, imported_at) VALUES (?, ?, ?, ?, ?, ?)',
          )
          .run(r.rootFingerprint, r.number, toText(r.thisUpdate), toText(r.nextUpdate), r.der, toText(r.importedAt));
      } catch (err) {
        if (isUniqueViolation(err))
          throw new StoreError('conflict', `root CRL number ${r.number} was already imported`, { cause: err });
        if (isForeignKeyViolation(err))
          throw new StoreError('notFound', 'the root of this CRL is not one of our roots', { cause: err });
        throw err;
      }
    });
    this.ctx.notify('issuers');
  }

  /** The root CRL with the highest number for a root, or null. */
  async latestRootCrl(rootFingerprint: string): Promise<RootCrlRecord | null> {
    return this.ctx.guard(() => {
      const row = this.ctx
        .stmt('SELECT * FROM root_crls WHERE root_fingerprint = ? ORDER BY number DESC LIMIT 1')
        .safeIntegers(true)
        .get(rootFingerprint) as RootCrlRow | undefined;
      return row === undefined ? null : toRootCrl(row);
    });
  }

  // ── root-delegated OCSP signers ──────────────────────────────────────────────────────────────

  async createOcspSigner(r: Omit<OcspSignerRecord, 'certDer'>): Promise<void> {
    this.ctx.guard(() =>
      this.ctx
        .stmt(
          'INSERT INTO ocsp_signers (id, issuer_id, sealed_key, csr_der, cert_der, created_at) VALUES (?, ?, ?, ?, NULL, ?)',
        )
        .run(r.id, r.issuerId, r.sealedKey, r.csrDer, toText(r.createdAt)),
    );
    this.ctx.notify('issuers');
  }

  async setOcspSignerCertificate(id: string, certDer: Uint8Array): Promise<void> {
    this.ctx.guard(() => {
      if (this.ctx.stmt('UPDATE ocsp_signers SET cert_der = ? WHERE id = ?').run(certDer, id).changes === 0)
        throw new StoreError('notFound', `no OCSP signer ${id}`);
    });
    this.ctx.notify('issuers');
  }

  /**
   * The newest root-delegated OCSP signer of an intermediate (with or without its certificate);
   * with `certified`, the newest that has its certificate.
   */
  async getOcspSigner(issuerId: string, opts: { certified?: boolean } = {}): Promise<OcspSignerRecord | null> {
    return this.ctx.guard(() => {
      const sql = `SELECT * FROM ocsp_signers WHERE issuer_id = ?${opts.certified === true ? ' AND cert_der IS NOT NULL' : ''} ORDER BY created_at DESC LIMIT 1`;
      const row = this.ctx.stmt(sql).get(issuerId) as OcspSignerRow | undefined;
      return row === undefined ? null : toSigner(row);
    });
  }
}
