/**
 * Where the PostgreSQL engine reports what it survives (a connection lost, a reconnect): the
 * shape of the authority's Logger, declared here because the store may not import the
 * authority. Fields carry codes and counts, never a URL (it may hold a password) or a value.
 */
export interface PgLogger {
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
}

/** One JSON line per event on stderr: what a store opened without a logger reports. */
export const stderrLogger: PgLogger = {
  info: (event, fields) => process.stderr.write(`${JSON.stringify({ level: 'info', event, ...fields })}\n`),
  warn: (event, fields) => process.stderr.write(`${JSON.stringify({ level: 'warn', event, ...fields })}\n`),
};
