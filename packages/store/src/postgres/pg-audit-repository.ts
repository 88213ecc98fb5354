import type { AuditEntry, ListAuditOptions } from '../contracts/records.js';
import type { PgContext } from './pg-context.js';
import { toStorageError } from './pg-errors.js';
import { checkLimit, toAuditEntry, type AuditRow } from './pg-rows.js';

/** The audit log, on PostgreSQL. Writes of other repositories record theirs with `PgContext.insertAudit`. */
export class PgAuditRepository {
  constructor(private readonly ctx: PgContext) {}

  /** Append one audit entry. */
  async appendAudit(e: AuditEntry): Promise<void> {
    try {
      await this.ctx.insertAudit(this.ctx.pool, e);
    } catch (err) {
      throw toStorageError(err);
    }
  }

  /** Audit entries in the order they were written, optionally only those at or after `since` and of one `action`. */
  async listAudit(opts: ListAuditOptions = {}): Promise<AuditEntry[]> {
    const params: unknown[] = [checkLimit(opts.limit)];
    const where: string[] = [];
    if (opts.since !== undefined) {
      params.push(opts.since);
      where.push(`at >= $${params.length}`);
    }
    if (opts.action !== undefined) {
      params.push(opts.action);
      where.push(`action = $${params.length}`);
    }
    const rows = await this.ctx.query<AuditRow>(
      `SELECT at, action, actor, serial, detail FROM audit_log ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY id LIMIT $1`,
      params,
    );
    return rows.map(toAuditEntry);
  }
}
