import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { shortleafArgs, track, DEFAULT_TIMEOUT_MS } from './cli.js';

/** The URLs `shortleaf serve` announces in its `listening` log line. */
export interface ServerUrls {
  /** https://127.0.0.1:PORT, the address it bound. */
  api: string;
  /** http://127.0.0.1:PORT of the status listener. */
  status: string;
  /** The base URL clients use (token audiences derive from it): https://localhost:PORT by default. */
  publicUrl: string;
  /** The base URL leaves embed for OCSP, CRL and caIssuers. */
  statusUrl: string;
}

export interface RunningServer extends ServerUrls {
  apiPort: number;
  statusPort: number;
  child: ChildProcess;
  stderr(): string;
  stdout(): string;
  /** Every JSON log line printed so far. */
  logs(): Array<Record<string, unknown>>;
  /** Whether the process has exited (it should not have, while a test runs against it). */
  exited(): boolean;
  /** SIGTERM, then SIGKILL if it has not exited within 10 s. Safe to call twice. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface ServeOptions {
  data: string;
  /** Extra arguments after the data folder and the two port-0 listeners. */
  args?: readonly string[];
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
  /** Leave out --listen/--status-listen (when a config file sets them). */
  noListenFlags?: boolean;
}

function serveArgs(opts: ServeOptions): string[] {
  const listen = opts.noListenFlags ? [] : ['--listen', '127.0.0.1:0', '--status-listen', '127.0.0.1:0'];
  return shortleafArgs(['serve', '--data', opts.data, ...listen, ...(opts.args ?? [])]);
}

function parseLogs(text: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      /* a partial line: the rest is still coming */
    }
  }
  return out;
}

/**
 * Starts `shortleaf serve` on free ports and resolves once it logs `listening`. Rejects with its
 * stderr if it exits first or does not listen within the timeout (it is then killed).
 */
export function startServer(opts: ServeOptions): Promise<RunningServer> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const child = track(process.execPath, serveArgs(opts), { ...(opts.env ? { env: opts.env } : {}) });
  let stderr = '';
  let stdout = '';
  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exitedPromise = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    });
  });
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stdin!.end();

  const stop = async () => {
    if (exit !== null) return exit;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, 10_000);
    });
    await Promise.race([exitedPromise, killed]);
    clearTimeout(timer);
    return exitedPromise;
  };

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`shortleaf serve did not log "listening" within ${timeoutMs} ms\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const ev = parseLogs(stderr).find((l) => l.event === 'listening');
      if (ev === undefined) return;
      clearTimeout(timer);
      const api = String(ev.api);
      const status = String(ev.status);
      resolve({
        api,
        status,
        publicUrl: String(ev.publicUrl),
        statusUrl: String(ev.statusUrl),
        apiPort: Number(new URL(api).port),
        statusPort: Number(new URL(status).port),
        child,
        stderr: () => stderr,
        stdout: () => stdout,
        logs: () => parseLogs(stderr),
        exited: () => exit !== null,
        stop,
      });
    });
    void exitedPromise.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`shortleaf serve exited (${code ?? signal}) before listening\nstderr:\n${stderr}`));
    });
  });
}

export interface FailedStart {
  /** True if it logged `listening` (it was then killed): for these tests, a failure. */
  listened: boolean;
  timedOut: boolean;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  stdout: string;
}

/**
 * Runs `shortleaf serve` where it must refuse to start. Resolves when it exits; if it logs
 * `listening` instead, it is killed at once and `listened` is true; if it does neither within
 * the timeout, it is killed and `timedOut` is true.
 */
export function serveExpectingFailure(opts: ServeOptions): Promise<FailedStart> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const child = track(process.execPath, serveArgs(opts), { ...(opts.env ? { env: opts.env } : {}) });
  let stderr = '';
  let stdout = '';
  let listened = false;
  let timedOut = false;
  child.stdin!.end();
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (!listened && parseLogs(stderr).some((l) => l.event === 'listening')) {
      listened = true;
      child.kill('SIGKILL');
    }
  });
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  return new Promise((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ listened, timedOut, code, signal, stderr, stdout });
    });
  });
}

/**
 * Polls `check` until it returns a value other than undefined, or fails after the deadline with
 * the last error seen. The pause between attempts is pacing, not synchronisation.
 */
export async function pollUntil<T>(
  what: string,
  check: () => Promise<T | undefined>,
  opts: { timeoutMs: number; intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${opts.timeoutMs} ms waiting for ${what}${last ? `; last error: ${(last as Error).message}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 500));
  }
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago: bound with port 0, read, and closed. For
 * processes (nginx) that cannot announce the port they picked.
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
