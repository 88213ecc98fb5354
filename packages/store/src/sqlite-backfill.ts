import type Database from 'better-sqlite3';
import { certificateKeyDigest } from './key-digest.js';

/**
 * Fills in the key digest of certificates recorded before migration 0005 (SQLite cannot hash a
 * key inside a certificate), and blocks the keys of those already revoked for keyCompromise by
 * the operator or by a revoker who proved it held the key (the actors the authority records for
 * mTLS self-revocation and ACME requests signed with the certificate's key), as a revocation today would.
 * Idempotent and cheap once done: it only looks at rows whose digest is still missing.
 */
export function backfillKeyDigests(db: Database.Database): void {
  // A database opened with an older migrations folder (tests of earlier schemas) has no column to fill.
  if (db.prepare("SELECT 1 FROM pragma_table_info('certificates') WHERE name = 'spki_sha256'").get() === undefined)
    return;
  const missing = db
    .prepare('SELECT serial, der FROM certificates WHERE spki_sha256 IS NULL AND der IS NOT NULL')
    .all() as Array<{ serial: string; der: Buffer }>;
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
