import type { RepositoryContext } from './sqlite-context.js';

/** Key-value settings (the sealing salt, the CRL number floor a restore records), on the store's SQLite connection. */
export class SettingsRepository {
  constructor(private readonly ctx: RepositoryContext) {}

  /** The value stored under `key`, or null. */
  async getSetting(key: string): Promise<string | null> {
    return this.ctx.guard(() => {
      const value = this.ctx.stmt('SELECT value FROM settings WHERE key = ?').pluck().get(key) as string | undefined;
      return value ?? null;
    });
  }

  /** Store `value` under `key`, replacing any previous value. */
  async setSetting(key: string, value: string): Promise<void> {
    this.ctx.guard(() =>
      this.ctx
        .stmt('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value')
        .run(key, value),
    );
  }

  /** Store `value` under `key` unless a value is there; returns the value stored. */
  async settingOnce(key: string, value: string): Promise<string> {
    return this.ctx.guard(() => {
      this.ctx.stmt('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING').run(key, value);
      return this.ctx.stmt('SELECT value FROM settings WHERE key = ?').pluck().get(key) as string;
    });
  }
}
