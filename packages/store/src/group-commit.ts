import type Database from 'better-sqlite3';

interface Pending {
  run(): void;
  resolve(): void;
  reject(err: unknown): void;
}

/**
 * Group commit for the issuance writes. Every commit under `synchronous=FULL` waits for an fsync,
 * and better-sqlite3 blocks the event loop while it does; with many requests in flight, paying
 * that once per request caps issuance at the disk's fsync rate. Writes queued in the same turn
 * of the event loop share one transaction: each runs inside its own savepoint, so one failing
 * (a replayed token) rolls back alone, and every promise settles only after the commit that
 * made its write durable.
 */
export class GroupCommitter {
  private queue: Pending[] = [];
  private scheduled = false;
  private readonly batch: Database.Transaction<(ops: Pending[]) => unknown[]>;

  constructor(
    db: Database.Database,
    private readonly mapError: (err: unknown) => unknown,
  ) {
    const single = db.transaction((op: Pending) => op.run());
    this.batch = db.transaction((ops: Pending[]) =>
      ops.map((op) => {
        try {
          single(op); // nested: a SAVEPOINT, rolled back on its own if it throws
          return undefined;
        } catch (err) {
          // On some errors (SQLITE_FULL, SQLITE_IOERR) SQLite has already rolled back the whole
          // transaction: the writes before this one are gone, and the ones after it would each
          // commit on their own while their callers are told the batch failed. Fail them all.
          if (!db.inTransaction) throw err;
          return mapError(err) ?? err;
        }
      }),
    );
  }

  /** Queues a write; resolves once it is committed, rejects with its own error or the batch's. */
  submit(run: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ run, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    const ops = this.queue;
    this.queue = [];
    this.scheduled = false;
    let outcomes: unknown[];
    try {
      outcomes = this.batch.immediate(ops);
    } catch (err) {
      const mapped = this.mapError(err) ?? err;
      for (const op of ops) op.reject(mapped);
      return;
    }
    ops.forEach((op, i) => (outcomes[i] === undefined ? op.resolve() : op.reject(outcomes[i])));
  }
}
