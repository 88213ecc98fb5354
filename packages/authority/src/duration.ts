import { AuthorityError } from './errors.js';

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `90s`, `15m`, `24h`, `7d` (or a sum like `1h30m`) into milliseconds. */
export function parseDuration(text: string): number {
  if (typeof text !== 'string' || !/^(\d{1,6}[smhd])+$/.test(text)) {
    throw new AuthorityError('badLifetime', `${JSON.stringify(text)} is not a duration (use e.g. 90s, 15m, 24h, 7d)`);
  }
  let total = 0;
  for (const [, n, unit] of text.matchAll(/(\d+)([smhd])/g)) total += Number(n) * UNITS[unit!]!;
  return total;
}

/** Formats milliseconds the way operators write them, for messages. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${Math.round(ms / 1000)}s`;
}
