import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A benchmark's temporary folder and the processes it started. `cleanUp` stops them newest first
 * and removes the folder; it also runs on SIGINT and SIGTERM, when a `finally` would not.
 */
export function benchWorkspace(prefix: string): {
  work: string;
  stops: Array<() => Promise<void>>;
  cleanUp(): Promise<void>;
} {
  const work = mkdtempSync(join(tmpdir(), prefix));
  const stops: Array<() => Promise<void>> = [];
  const cleanUp = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    stops.length = 0;
    rmSync(work, { recursive: true, force: true });
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => void cleanUp().finally(() => process.exit(130)));
  return { work, stops, cleanUp };
}
