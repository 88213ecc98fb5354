import type { Logger } from '@shortleaf/authority';
import { currentRequestId } from './request-context.js';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const;

/**
 * One JSON object per line on stderr (stdout is for command output). A line written while a
 * request is being handled carries its `requestId` (from the request context, so no caller has to
 * pass it). Callers pass fields, never secrets; the logger has no way to know, so the rule is
 * enforced by review and a log-scan test.
 */
export function createLogger(
  level: keyof typeof LEVELS = 'info',
  stream: NodeJS.WritableStream = process.stderr,
): Logger {
  const write = (lvl: keyof typeof LEVELS, event: string, fields?: Record<string, unknown>) => {
    if (LEVELS[lvl] < LEVELS[level]) return;
    const requestId = currentRequestId();
    const line =
      requestId === undefined
        ? { time: new Date().toISOString(), level: lvl, event, ...fields }
        : { time: new Date().toISOString(), level: lvl, event, requestId, ...fields };
    stream.write(`${JSON.stringify(line)}\n`);
  };
  return {
    info: (e, f) => write('info', e, f),
    warn: (e, f) => write('warn', e, f),
    error: (e, f) => write('error', e, f),
  };
}
