import type { PoolClient } from 'pg';
import { StoreError } from '../contracts/errors.js';
import type { AuditEntry, TokenUse } from '../contracts/records.js';
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
} from '../contracts/revocations.js';
import type { RevocationsEngine } from '../contracts/store.js';
import type { PgContext, Queryable } from './pg-context.js';
import { isForeignKeyViolation } from './pg-errors.js';
import { parseChangeCursor, reasonUpgrades } from '../engine-rules.js';

/** Only keyCompromise replaces an earlier reason: it is the one relying parties must learn of. */

interface RevocationRow {
  serial: string;
  revoked_at: Date;
  reason: string;
  actor: string;
}
interface CrlRow {
  issuer_id: string;
  number: string;
  this_update: Date;
  next_update: Date;
  entries: number;
  der: Buffer;
}
interface RootCrlRow {
  root_fingerprint: string;
  number: string;
  this_update: Date;
  next_update: Date;
  der: Buffer;
  imported_at: Date;
}
interface OcspSignerRow {
  id: string;
  issuer_id: string;
  sealed_key: Buffer;
  csr_der: Buffer;
  cert_der: Buffer | null;
  created_at: Date;
}

const toRevocation = (r: RevocationRow): RevocationRecord => ({
  serial: r.serial,
  revokedAt: r.revoked_at,
  reason: r.reason,
  actor: r.actor,
});
// bigint columns come back as decimal text (node-postgres keeps every int8 exact).
const toCrl = (r: CrlRow): CrlRecord => ({
  issuerId: r.issuer_id,
  number: BigInt(r.number),
  thisUpdate: r.this_update,
  nextUpdate: r.next_update,
  entries: r.entries,
  der: r.der,
});
const toRootCrl = (r: RootCrlRow): RootCrlRecord => ({
  rootFingerprint: r.root_fingerprint,
  number: BigInt(r.number),
  thisUpdate: r.this_update,
  nextUpdate: r.next_update,
  der: r.der,
  importedAt: r.imported_at,
});
const toSigner = (r: OcspSignerRow): OcspSignerRecord => ({
  id: r.id,
  issuerId: r.issuer_id,
  sealedKey: r.sealed_key,
  csrDer: r.csr_der,
  certDer: r.cert_der,
  createdAt: r.created_at,
});

const NO_REACH: RevocationReach = { lineage: false, key: false };

const REVOCATION_COLUMNS = 'serial, revoked_at, reason, actor';
const SELECT_REVOCATION = `SELECT ${REVOCATION_COLUMNS} FROM revocations WHERE serial = $1`;
const CRL_COLUMNS = 'issuer_id, number, this_update, next_update, entries, der';
const ROOT_CRL_COLUMNS = 'root_fingerprint, number, this_update, next_update, der, imported_at';
const SIGNER_COLUMNS = 'id, issuer_id, sealed_key, csr_der, cert_der, created_at';

// The change cursor. A revision is the largest so far plus one, taken while the transaction holds
// SHARE ROW EXCLUSIVE on revocations (see `revoke`): that mode conflicts with itself and with
// every INSERT/UPDATE of the table, and is held until commit, so the next writer reads MAX only
// after this one committed and became visible. Revisions therefore grow in commit order, and a
// reader that saw revision n has already seen every revision below n; a sequence, drawn before
// commit, would let a slow transaction commit a smaller number after a reader had moved past it.
// Readers (`changes`, `get`, OCSP) take no lock and never wait.
const LOCK_REVOCATIONS = 'LOCK TABLE revocations IN SHARE ROW EXCLUSIVE MODE';
const NEXT_REVISION = '(SELECT COALESCE(MAX(revision), 0) + 1 FROM revocations)';

/**
 * Revocation state on PostgreSQL, shared by every instance on the database: revocations (first one
 * wins, except that keyCompromise may replace another reason), their reach over lineages and keys,
 * blocked keys, the CRLs each intermediate published (a number is used once across instances),
 * imported root CRLs, and root-delegated OCSP signers. Writes send a notice (`ctx.notify`) that
 * other instances receive when the transaction commits.
 */
export class PgRevocationRepository implements RevocationsEngine {
  constructor(private readonly ctx: PgContext) {}

  /**
   * Records a revocation and its audit entry in one transaction, spending the one-time token that
   * authorised it if any (a replay is `tokenReplayed`), and with it every certificate the `reach`
   * covers (each audited) and, for the key, its block. Revoking twice keeps the first time and
   * reason (`alreadyRevoked` says so), except that keyCompromise replaces any other reason (RFC
   * 5280 §5.3.1). An unknown serial is `notFound`, and writes nothing.
   *
   * The transaction first takes the revocation gate exclusive, so no reservation passes its
   * blocked-key and revoked-lineage checks while this reads the certificates it reaches, then
   * locks the revocations table against every other writer (readers go on), which is what keeps
   * revisions in commit order whoever else may write the table. Revokes from any number of
   * instances so run one after another, each seeing every earlier one committed: two racing
   * revokes of one serial end as SQLite's would run in turn (one records it, the other finds it
   * revoked).
   */
  async revoke(
    r: RevocationRecord,
    audit: AuditEntry,
    tokenUse?: TokenUse,
    reach: RevocationReach = NO_REACH,
  ): Promise<RevocationOutcome> {
    return this.ctx.transaction(async (tx) => {
      await this.ctx.revocationGate(tx, 'exclusive');
      await tx.query(LOCK_REVOCATIONS);
      if (tokenUse !== undefined) {
        const spent = await tx.query(
          'INSERT INTO token_uses (provisioner, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
          [tokenUse.provisioner, tokenUse.jti, tokenUse.expiresAt],
        );
        if (spent.rowCount === 0)
          throw new StoreError(
            'tokenReplayed',
            `this token for provisioner ${tokenUse.provisioner} has already been used`,
          );
      }
      const { rows } = await tx.query<{ status: string; lineage: string | null; spki_sha256: string | null }>(
        'SELECT status, lineage, spki_sha256 FROM certificates WHERE serial = $1',
        [r.serial],
      );
      const target = rows[0];
      if (target?.status !== 'issued')
        throw new StoreError('notFound', `no issued certificate with serial ${r.serial}`);
      const existing = await getRevocation(tx, r.serial);
      let record: RevocationRecord;
      let previousReason: string | undefined;
      if (existing === null) {
        await insertRevocation(tx, r.serial, r);
        record = r;
      } else if (reasonUpgrades(existing.reason, r.reason)) {
        record = await upgrade(tx, existing, r.actor);
        previousReason = existing.reason;
      } else {
        return { record: existing, alreadyRevoked: true, also: [] };
      }
      await this.ctx.insertAudit(
        tx,
        previousReason === undefined ? audit : { ...audit, detail: { ...audit.detail, previousReason } },
      );
      const also: RevocationRecord[] = [];
      for (const serial of await reached(tx, r.serial, target.lineage, target.spki_sha256, reach, r.revokedAt)) {
        const before = await getRevocation(tx, serial);
        let done: RevocationRecord | null = null;
        if (before === null) {
          done = { serial, revokedAt: r.revokedAt, reason: r.reason, actor: r.actor };
          await insertRevocation(tx, serial, r);
        } else if (reasonUpgrades(before.reason, r.reason)) {
          done = await upgrade(tx, before, r.actor);
        }
        if (done === null) continue;
        also.push(done);
        await this.ctx.insertAudit(tx, {
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
        await tx.query(
          'INSERT INTO blocked_keys (spki_sha256, reason, serial, blocked_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
          [target.spki_sha256, r.reason, r.serial, r.revokedAt],
        );
      }
      await this.ctx.notify(tx, 'revocations');
      return { record, alreadyRevoked: false, ...(previousReason === undefined ? {} : { previousReason }), also };
    });
  }

  /** The block on a key digest, or null. */
  async blockedKey(spkiSha256: string): Promise<BlockedKeyRecord | null> {
    const rows = await this.ctx.query<{ spki_sha256: string; reason: string; serial: string | null; blocked_at: Date }>(
      'SELECT spki_sha256, reason, serial, blocked_at FROM blocked_keys WHERE spki_sha256 = $1',
      [spkiSha256],
    );
    const row = rows[0];
    return row === undefined
      ? null
      : { spkiSha256: row.spki_sha256, reason: row.reason, serial: row.serial, blockedAt: row.blocked_at };
  }

  /** The revocation of this serial, or null. */
  async get(serial: string): Promise<RevocationRecord | null> {
    const rows = await this.ctx.query<RevocationRow>(SELECT_REVOCATION, [serial]);
    return rows[0] === undefined ? null : toRevocation(rows[0]);
  }

  /**
   * The entries an intermediate's next CRL lists: its revoked certificates that had not expired
   * when its previous CRL was issued. Each entry so stays until one CRL issued after its
   * certificate expired has carried it (RFC 5280 §3.3), then leaves.
   */
  async listForCrl(issuerId: string, previousThisUpdate: Date | null): Promise<CrlEntryRecord[]> {
    const rows = await this.ctx.query<{ serial: string; revoked_at: Date; reason: string }>(
      `SELECT r.serial, r.revoked_at, r.reason FROM revocations r JOIN certificates c ON c.serial = r.serial
       WHERE c.issuer_id = $1 AND ($2::timestamptz IS NULL OR c.not_after >= $2::timestamptz)
       ORDER BY r.revoked_at, r.serial COLLATE "C"`,
      [issuerId, previousThisUpdate],
    );
    return rows.map((row) => ({ serial: row.serial, revokedAt: row.revoked_at, reason: row.reason }));
  }

  /** Every revocation, newest first (equal times: the latest change first). */
  async list(): Promise<RevocationRecord[]> {
    const rows = await this.ctx.query<RevocationRow>(
      `SELECT ${REVOCATION_COLUMNS} FROM revocations ORDER BY revoked_at DESC, revision DESC`,
    );
    return rows.map(toRevocation);
  }

  /**
   * Revocations recorded or changed after `cursor` (by any instance or the CLI); null reads from
   * the beginning. The cursor is the last revision seen, as decimal text.
   */
  async changes(cursor: ChangeCursor | null): Promise<RevocationChange[]> {
    const after = parseChangeCursor(cursor);
    const rows = await this.ctx.query<{ revision: string; serial: string }>(
      'SELECT revision, serial FROM revocations WHERE revision > $1 ORDER BY revision',
      [after],
    );
    return rows.map((row) => ({ serial: row.serial, cursor: String(row.revision) }));
  }

  /** Where `changes` would start to return only what is recorded from now on. */
  async changeCursor(): Promise<ChangeCursor> {
    const rows = await this.ctx.query<{ head: string }>('SELECT COALESCE(MAX(revision), 0) AS head FROM revocations');
    return String(rows[0]?.head ?? 0);
  }

  // ── CRLs ─────────────────────────────────────────────────────────────────────────────────────

  /** The newest CRL this intermediate published, or null. */
  async latestCrl(issuerId: string): Promise<CrlRecord | null> {
    const rows = await this.ctx.query<CrlRow>(
      `SELECT ${CRL_COLUMNS} FROM crls WHERE issuer_id = $1 ORDER BY number DESC LIMIT 1`,
      [issuerId],
    );
    return rows[0] === undefined ? null : toCrl(rows[0]);
  }

  /**
   * Records a published CRL; a number already used, by this instance or another, is `conflict`
   * (numbers never repeat: the primary key decides between two instances that built one at once).
   */
  async insertCrl(r: CrlRecord): Promise<void> {
    await this.ctx.transaction(async (tx) => {
      const inserted = await tx.query(
        `INSERT INTO crls (issuer_id, number, this_update, next_update, entries, der) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (issuer_id, number) DO NOTHING`,
        [r.issuerId, r.number, r.thisUpdate, r.nextUpdate, r.entries, r.der],
      );
      if (inserted.rowCount === 0)
        throw new StoreError('conflict', `CRL number ${r.number} of issuer ${r.issuerId} is already used`);
      await this.ctx.notify(tx, 'crls');
    });
  }

  /** Drops all but the newest `keep` CRLs of an issuer: old ones are never served again. */
  async pruneCrls(issuerId: string, keep: number): Promise<void> {
    if (!Number.isSafeInteger(keep) || keep < 0)
      throw new RangeError(`keep must be a non-negative integer, got ${keep}`);
    await this.ctx.query(
      `DELETE FROM crls WHERE issuer_id = $1
       AND number NOT IN (SELECT number FROM crls WHERE issuer_id = $1 ORDER BY number DESC LIMIT $2)`,
      [issuerId, keep],
    );
  }

  // ── root CRLs ────────────────────────────────────────────────────────────────────────────────

  /** Stores a root CRL signed offline; the caller has checked its signature and number. */
  async importRootCrl(r: RootCrlRecord): Promise<void> {
    await this.ctx.transaction(async (tx) => {
      let inserted: { rowCount: number | null };
      try {
        inserted = await tx.query(
          `INSERT INTO root_crls (root_fingerprint, number, this_update, next_update, der, imported_at)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (root_fingerprint, number) DO NOTHING`,
          [r.rootFingerprint, r.number, r.thisUpdate, r.nextUpdate, r.der, r.importedAt],
        );
      } catch (err) {
        if (isForeignKeyViolation(err))
          throw new StoreError('notFound', 'the root of this CRL is not one of our roots', { cause: err });
        throw err;
      }
      if (inserted.rowCount === 0) throw new StoreError('conflict', `root CRL number ${r.number} was already imported`);
      await this.ctx.notify(tx, 'issuers');
    });
  }

  /** The root CRL with the highest number for a root, or null. */
  async latestRootCrl(rootFingerprint: string): Promise<RootCrlRecord | null> {
    const rows = await this.ctx.query<RootCrlRow>(
      `SELECT ${ROOT_CRL_COLUMNS} FROM root_crls WHERE root_fingerprint = $1 ORDER BY number DESC LIMIT 1`,
      [rootFingerprint],
    );
    return rows[0] === undefined ? null : toRootCrl(rows[0]);
  }

  // ── root-delegated OCSP signers ──────────────────────────────────────────────────────────────

  async createOcspSigner(r: Omit<OcspSignerRecord, 'certDer'>): Promise<void> {
    await this.ctx.transaction(async (tx) => {
      await tx.query(
        'INSERT INTO ocsp_signers (id, issuer_id, sealed_key, csr_der, cert_der, created_at) VALUES ($1, $2, $3, $4, NULL, $5)',
        [r.id, r.issuerId, r.sealedKey, r.csrDer, r.createdAt],
      );
      await this.ctx.notify(tx, 'issuers');
    });
  }

  async setOcspSignerCertificate(id: string, certDer: Uint8Array): Promise<void> {
    await this.ctx.transaction(async (tx) => {
      const updated = await tx.query('UPDATE ocsp_signers SET cert_der = $1 WHERE id = $2', [certDer, id]);
      if (updated.rowCount === 0) throw new StoreError('notFound', `no OCSP signer ${id}`);
      await this.ctx.notify(tx, 'issuers');
    });
  }

  /**
   * The newest root-delegated OCSP signer of an intermediate (with or without its certificate);
   * with `certified`, the newest that has its certificate. Of two created at the same instant, the
   * later inserted.
   */
  async getOcspSigner(issuerId: string, opts: { certified?: boolean } = {}): Promise<OcspSignerRecord | null> {
    const rows = await this.ctx.query<OcspSignerRow>(
      `SELECT ${SIGNER_COLUMNS} FROM ocsp_signers WHERE issuer_id = $1${opts.certified === true ? ' AND cert_der IS NOT NULL' : ''}
       ORDER BY created_at DESC, seq DESC LIMIT 1`,
      [issuerId],
    );
    return rows[0] === undefined ? null : toSigner(rows[0]);
  }
}

async function getRevocation(tx: Queryable, serial: string): Promise<RevocationRecord | null> {
  const { rows } = await tx.query<RevocationRow>(SELECT_REVOCATION, [serial]);
  return rows[0] === undefined ? null : toRevocation(rows[0]);
}

/** Records `serial` revoked as `r` says, with the next revision (the caller holds LOCK_REVOCATIONS). */
async function insertRevocation(tx: PoolClient, serial: string, r: RevocationRecord): Promise<void> {
  await tx.query(
    `INSERT INTO revocations (serial, revoked_at, reason, actor, revision) VALUES ($1, $2, $3, $4, ${NEXT_REVISION})`,
    [serial, r.revokedAt, r.reason, r.actor],
  );
}

/**
 * Moves a revocation to keyCompromise, keeping the time it was first revoked (Boulder's
 * UpdateRevokedCertificate does the same). It takes a new revision, the largest, so a server
 * watching `changes` re-signs its OCSP answers and rebuilds its CRL for it as for a new one.
 */
async function upgrade(tx: PoolClient, existing: RevocationRecord, actor: string): Promise<RevocationRecord> {
  await tx.query(
    `UPDATE revocations SET reason = 'keyCompromise', actor = $1, revision = ${NEXT_REVISION} WHERE serial = $2`,
    [actor, existing.serial],
  );
  return { ...existing, reason: 'keyCompromise', actor };
}

/**
 * The live (unexpired) certificates a revocation reaches besides its own: with `lineage`, those of
 * its lineage; with `key`, every certificate with the same key and every lineage such a
 * certificate belongs to. Reserved certificates count: one being signed now is revoked before
 * anyone sees it. In reservation order (`seq` stands in for SQLite's rowid).
 */
async function reached(
  tx: PoolClient,
  serial: string,
  lineage: string | null,
  spki: string | null,
  reach: RevocationReach,
  now: Date,
): Promise<string[]> {
  let rows: Array<{ serial: string }> = [];
  if (reach.key && spki !== null) {
    ({ rows } = await tx.query<{ serial: string }>(
      `SELECT serial FROM certificates
       WHERE (spki_sha256 = $1 OR lineage = $2 OR lineage IN (SELECT lineage FROM certificates WHERE spki_sha256 = $1))
         AND not_after > $3 AND serial <> $4
       ORDER BY created_at, seq`,
      [spki, lineage, now, serial],
    ));
  } else if (reach.lineage || reach.key) {
    ({ rows } = await tx.query<{ serial: string }>(
      'SELECT serial FROM certificates WHERE lineage = $1 AND not_after > $2 AND serial <> $3 ORDER BY created_at, seq',
      [lineage, now, serial],
    ));
  }
  return rows.map((row) => row.serial);
}
