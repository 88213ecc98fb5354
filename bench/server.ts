import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const MAIN = new URL('../apps/ca/src/main.ts', import.meta.url).pathname;

export interface BenchServer {
  dataDir: string;
  publicUrl: string;
  statusUrl: string;
  pid: number;
  stop(): Promise<void>;
}

/** Initialises a development CA in a temp folder and starts `shortleaf serve` on free ports. */
export async function startServer(): Promise<BenchServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'shortleaf-bench-'));
  const init = spawnSync(process.execPath, ['--import', 'tsx', MAIN, 'init', '--data', dataDir], { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`init failed: ${init.stderr}`);
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--data', dataDir, '--listen', '127.0.0.1:0', '--status-listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env },
  });
  const listening = await new Promise<{ publicUrl: string; statusUrl: string }>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s: ${buf}`)), 30_000);
    child.stderr!.on('data', (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split('\n')) {
        if (!line.includes('"event":"listening"')) continue;
        clearTimeout(timer);
        resolve(JSON.parse(line) as { publicUrl: string; statusUrl: string });
      }
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${buf}`)));
  });
  return {
    dataDir,
    ...listening,
    pid: child.pid!,
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** CPU time (user + system, ms) a process has used so far, from /proc. */
export function cpuMs(pid: number): number {
  const stat = spawnSync('cat', [`/proc/${pid}/stat`], { encoding: 'utf8' }).stdout;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100;
}
