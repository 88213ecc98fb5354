import type { Pool, PoolClient, QueryResultRow } from 'pg';
import type { AuditEntry } from '../contracts/records.js';
import type { NoticeTopic } from '../contracts/store.js';
import { isRetryable, toStorageError } from './pg-errors.js';

/** Something to run SQL on: the pool (one statement, autocommit) or a client inside a transaction. */
export interface Queryable {
  query<R extends QueryResultRow = QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<{ rows: R[]; rowCount: number | null }>;
}

/** Who takes the revocation gate (`PgContext.revocationGate`), and how. */
export type GateMode = 'shared' | 'exclusive';

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
  /**
   * Takes, until `tx` ends, the lock that orders revocations against reservations: a reservation
   * takes it shared (reservations never wait for each other), a revocation exclusive (revocations
   * run one at a time), each before it reads anything. SQLite gets this from its single writer: a
   * reservation cannot pass its blocked-key and revoked-parent checks while a revocation that will
   * block that key or revoke that lineage is reading the certificates it reaches, and so escape it.
   * The lock is a table lock on `revocations`: shared is ROW EXCLUSIVE (what any INSERT takes, so
   * it conflicts with nothing but the exclusive mode), exclusive is SHARE ROW EXCLUSIVE (conflicts
   * with itself and every writer, not with readers).
   */
  revocationGate(tx: Queryable, mode: GateMode): Promise<void>;
}

/** The channel name a topic is sent on (`LISTEN shortleaf_revocations`, …). */
export const noticeChannel = (topic: NoticeTopic): string => `shortleaf_${topic}`;

/**
 * The 64-bit advisory lock key for a name, computed by the server (`hashtextextended`), so every
 * process agrees on it. Names are prefixed by their user (`lock:`, `migrate`, `issuers:`), keeping
 * the store's locks apart from each other; other applications on the same database should not
 * use advisory locks with this hash.
 */
export const advisoryKey = (placeholder: string): string => `hashtextextended(${placeholder}, 0)`;

const maxAttempts = 4;

/** A short, jittered pause before running a transaction that lost a race again. */
const backoff = (attempt: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * 2 ** attempt));

/** The context the store hands its repositories, on `pool`. */
export function createPgContext(pool: Pool): PgContext {
  const context: PgContext = {
    pool,
    async query<R extends QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]> {
      try {
        return (await pool.query<R>(sql, params)).rows;
      } catch (err) {
        throw toStorageError(err);
      }
    },
    async transaction<T>(work: (tx: PoolClient) => Promise<T>, opts: { serializable?: boolean } = {}): Promise<T> {
      for (let attempt = 1; ; attempt++) {
        try {
          return await runTransaction(pool, work, opts.serializable === true);
        } catch (err) {
          if (isRetryable(err) && attempt < maxAttempts) {
            await backoff(attempt);
            continue;
          }
          throw toStorageError(err);
        }
      }
    },
    async insertAudit(tx: Queryable, e: AuditEntry): Promise<void> {
      await tx.query('INSERT INTO audit_log (at, action, actor, serial, detail) VALUES ($1, $2, $3, $4, $5)', [
        e.at,
        e.action,
        e.actor,
        e.serial,
        JSON.stringify(e.detail),
      ]);
    },
    async notify(tx: Queryable, topic: NoticeTopic): Promise<void> {
      await tx.query("SELECT pg_notify($1, '')", [noticeChannel(topic)]);
    },
    async revocationGate(tx: Queryable, mode: GateMode): Promise<void> {
      await tx.query(`LOCK TABLE revocations IN ${mode === 'shared' ? 'ROW EXCLUSIVE' : 'SHARE ROW EXCLUSIVE'} MODE`);
    },
  };
  return context;
}

// One attempt: BEGIN, work, COMMIT on a client of its own. A client whose connection failed (or
// whose ROLLBACK did) is destroyed rather than returned to the pool. While the client is checked
// out, the pool does not listen for its errors; a connection dying between two statements would
// then be an unhandled 'error' event, which ends the process, so this attempt listens instead.
async function runTransaction<T>(pool: Pool, work: (tx: PoolClient) => Promise<T>, serializable: boolean): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error): void => {
    broken = err;
  };
  client.on('error', onError);
  try {
    await client.query(serializable ? 'BEGIN ISOLATION LEVEL SERIALIZABLE' : 'BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    if (broken === undefined) {
      try {
        await client.query('ROLLBACK');
      } catch (rollbackFailure) {
        broken = rollbackFailure instanceof Error ? rollbackFailure : new Error('ROLLBACK failed');
      }
    }
    throw err;
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}
