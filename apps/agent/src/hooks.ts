import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** What to do after new files are in place: run a command, or signal a process. */
export type Hook =
  { kind: 'exec'; command: string; timeoutMs: number } | { kind: 'signal'; signal: NodeJS.Signals; pidFile: string };

export interface HookOutcome {
  ok: boolean;
  /** A sentence for the log: the exit status, the signal sent, or what went wrong. */
  detail: string;
}

const OUTPUT_LIMIT = 2_000;

/**
 * Runs the hook once and reports how it went; never throws. `exec` runs through /bin/sh (so
 * `nginx -s reload && logger done` works) with a time limit; its output is kept short for the log.
 */
export function runHook(hook: Hook): Promise<HookOutcome> {
  if (hook.kind === 'signal') {
    try {
      const text = readFileSync(hook.pidFile, 'utf8').trim();
      const pid = Number(text);
      if (!/^\d+$/.test(text) || pid <= 1)
        return Promise.resolve({ ok: false, detail: `${hook.pidFile} does not hold a process id` });
      process.kill(pid, hook.signal);
      return Promise.resolve({ ok: true, detail: `sent ${hook.signal} to process ${pid}` });
    } catch (err) {
      return Promise.resolve({ ok: false, detail: `could not send ${hook.signal}: ${(err as Error).message}` });
    }
  }
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', hook.command], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (d: Buffer) => {
      if (output.length < OUTPUT_LIMIT) output += d.toString('utf8');
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => child.kill('SIGKILL'), hook.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, detail: `could not start the hook: ${err.message}` });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const tail = output.trim().slice(0, OUTPUT_LIMIT);
      if (code === 0) resolve({ ok: true, detail: `exited 0${tail ? `: ${tail}` : ''}` });
      else
        resolve({
          ok: false,
          detail:
            signal !== null
              ? `killed by ${signal}${signal === 'SIGKILL' ? ` after ${hook.timeoutMs} ms` : ''}`
              : `exited ${code}${tail ? `: ${tail}` : ''}`,
        });
    });
  });
}
