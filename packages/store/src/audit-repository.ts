import type Database from 'better-sqlite3';
import type { AuditEntry, ListAuditOptions } from './contracts/records.js';
import { toAuditEntry, toText } from './rows.js';
import type { AuditRow } from './rows.js';
import { checkLimit, type RepositoryContext } from './sqlite-context.js';

/** Appends one audit entry inside the caller's transaction: every repository's writes record theirs this way. */
export function insertAudit(stmt: (sql: string) => Database.Statement, e: AuditEntry): void {
  stmt('INSERT INTO audit_log (at, action, actor, serial, detail) VALUES (?, ?, ?, ?, ?)').run(
    toText(e.at),
    e.action,
    e.actor,
    e.serial,
    JSON.stringify(e.detail),
  );
}

/** The audit log, on the store's SQLite connection. */
export class AuditRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  /** Append one audit entry. */
  async appendAudit(e: AuditEntry): Promise<void> {
    this.ctx.guard(() => this.ctx.insertAudit(e));
  }

  /** Audit entries in the order they were written, optionally only those at or after `since` and of one `action`. */
  async listAudit(opts: ListAuditOptions = {}): Promise<AuditEntry[]> {
    const where: string[] = [];
    const params: Record<string, string | number> = { limit: checkLimit(opts.limit) };
    if (opts.since !== undefined) {
      where.push('at >= @since');
      params.since = toText(opts.since);
    }
    if (opts.action !== undefined) {
      where.push('action = @action');
      params.action = opts.action;
    }
    const sql = `SELECT * FROM audit_log ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT @limit`;
    return this.ctx.guard(() => (this.ctx.stmt(sql).all(params) as AuditRow[]).map(toAuditEntry));
  }
}
