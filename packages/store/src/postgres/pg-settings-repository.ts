import type { PgContext } from './pg-context.js';

/** Key-value settings (the sealing salt, the CRL number floor a restore records), on PostgreSQL. */
export class PgSettingsRepository {
  constructor(private readonly ctx: PgContext) {}

  /** The value stored under `key`, or null. */
  async getSetting(key: string): Promise<string | null> {
    const [row] = await this.ctx.query<{ value: string }>('SELECT value FROM settings WHERE key = $1', [key]);
    return row?.value ?? null;
  }

  /** Store `value` under `key`, replacing any previous value. */
  async setSetting(key: string, value: string): Promise<void> {
    await this.ctx.query(
      'INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      [key, value],
    );
  }

  /**
   * Store `value` under `key` unless a value is there, and return the value that stands: the
   * first writer's, whichever instance it was. Two statements on purpose: when another
   * transaction is inserting the same key, the INSERT waits for it and then does nothing, and
   * only a new statement (a new snapshot) can read the row it committed.
   */
  async settingOnce(key: string, value: string): Promise<string> {
    const inserted = await this.ctx.query<{ value: string }>(
      'INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING value',
      [key, value],
    );
    if (inserted.length > 0) return value;
    const stored = await this.getSetting(key);
    if (stored === null) throw new Error(`setting ${key} conflicted on insert but cannot be read`);
    return stored;
  }
}
