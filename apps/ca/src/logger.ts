import type { Logger } from '@shortleaf/authority';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;

/**
 * One JSON object per line on stderr (stdout is for command output). Callers pass fields, never
 * secrets; the logger has no way to know, so the rule is enforced by review and a log-scan test.
 */
export function createLogger(level: keyof typeof LEVELS = 'info', stream: NodeJS.WritableStream = process.stderr): Logger {
  const write = (lvl: keyof typeof LEVELS, event: string, fields?: Record<string, unknown>) => {
    if (LEVELS[lvl] < LEVELS[level]) return;
    stream.write(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, event, ...fields })}\n`);
  };
  return {
    info: (e, f) => write('info', e, f),
    warn: (e, f) => write('warn', e, f),
    error: (e, f) => write('error', e, f),
  };
}
