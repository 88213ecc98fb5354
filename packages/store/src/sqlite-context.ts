import type Database from 'better-sqlite3';
import type { AuditEntry } from './contracts/records.js';
import type { NoticeTopic } from './contracts/store.js';
import { checkedLimit } from './engine-rules.js';

/**
 * What each SQLite repository borrows from the store: its one connection, the statement cache,
 * the guard that turns disk-level failures into StoreError('storageUnavailable'), and the audit
 * insert that a write records in its own transaction.
 */
export interface RepositoryContext {
  db: Database.Database;
  stmt(sql: string): Database.Statement;
  guard<T>(operation: () => T): T;
  insertAudit(e: AuditEntry): void;
  /** Tells subscribers of this store that a write on `topic` committed (sqlite-coordination.ts). */
  notify(topic: NoticeTopic): void;
}

/** A LIMIT for SQLite: a non-negative integer, or -1 (no limit) when none is given. */
export function checkLimit(limit: number | undefined): number {
  return checkedLimit(limit) ?? -1; // SQLite: a negative LIMIT means no limit
}
