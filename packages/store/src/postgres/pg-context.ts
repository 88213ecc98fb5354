import type { Pool, PoolClient, QueryResultRow } from 'pg';
import type { AuditEntry } from '../contracts/records.js';
import type { NoticeTopic } from '../contracts/store.js';

/** Something to run SQL on: the pool (one statement, autocommit) or a client inside a transaction. */
export interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(sql: string, params?: unknown[]): Promise<{ rows: R[]; rowCount: number | null }>;
}

/**
 * What each PostgreSQL repository borrows from the store (the counterpart of sqlite-context.ts):
 * the pool, one-statement queries and transactions that turn driver failures into StoreError
 * (pg-errors.ts), the audit insert a write records in its own transaction, and the notice a write
 * sends to every process listening (`NOTIFY`, delivered at commit).
 */
export interface PgContext {
  pool: Pool;
  /** One statement outside any transaction; driver failures come out as StoreError. */
  query<R extends QueryResultRow = QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
  /**
   * Runs `work` in one transaction (READ COMMITTED unless `serializable`), committing when it
   * returns and rolling back when it throws; driver failures come out as StoreError. A
   * serialization failure or deadlock is retried a few times before it becomes `storageUnavailable`.
   */
  transaction<T>(work: (tx: PoolClient) => Promise<T>, opts?: { serializable?: boolean }): Promise<T>;
  insertAudit(tx: Queryable, e: AuditEntry): Promise<void>;
  /** Sends a notice on `topic` from inside `tx`: PostgreSQL delivers it when (and only if) `tx` commits. */
  notify(tx: Queryable, topic: NoticeTopic): Promise<void>;
}

/** The channel name a topic is sent on (`LISTEN shortleaf_revocations`, …). */
export const noticeChannel = (topic: NoticeTopic): string => `shortleaf_${topic}`;
