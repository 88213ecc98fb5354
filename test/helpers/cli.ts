import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { captureOutput, recordSecret, recordSecretsIn } from './secret-log.js';

/** The repository root: every spawned command runs here, as a user of a checkout would. */
export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The longest any single command may take before the test fails with its output. Generous on
 * purpose: `init` takes about a second alone, but the crash-safety test (64 clients and a server
 * killed and restarted) can run beside it on this 2-core machine, and a CI run saw `init` starve
 * past 30 s there.
 */
export const DEFAULT_TIMEOUT_MS = 90_000;

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

export interface RunOptions {
  /** Extra environment; `undefined` removes a variable. SHORTLEAF_* from the runner are never inherited. */
  env?: Record<string, string | undefined>;
  input?: string | Uint8Array;
  timeoutMs?: number;
  cwd?: string;
}

const live = new Set<ChildProcess>();
// A test that throws half-way must not leave servers behind: whatever is still running when the
// test process exits is killed.
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Environment for a child: the runner's, minus secrets it might carry, plus the given values. */
export function childEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith('SHORTLEAF_')) delete env[key];
  // pnpm sets INIT_CWD for `pnpm test`; the CLI would move there, away from the cwd a test chose.
  delete env.INIT_CWD;
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

const SECRET_ENV = ['SHORTLEAF_PASSWORD', 'SHORTLEAF_ROOT_PASSWORD'];

/**
 * Which output of a child goes to the secret scan (helpers/secret-log.ts): stderr of every Node
 * process (shortleaf, its agent, the bundle), where they log; stdout only of `serve` and agents.
 * Other verbs' stdout is their result, and `token` or `acme eab add` print a secret on purpose.
 */
function loggedOutput(command: string, args: readonly string[]): { label: string; stdout: boolean } | null {
  if (command !== process.execPath) return null;
  const script = args.findIndex((a) => a.endsWith('.ts') || a.endsWith('.js') || a.endsWith('.mjs'));
  if (script < 0) return null;
  const isCli = args[script]!.endsWith('apps/ca/src/main.ts');
  const verb = isCli ? (args[script + 1] ?? '') : 'agent';
  return { label: `${verb}-${args[script + 2] ?? ''}`, stdout: verb === 'serve' || verb === 'agent' };
}

/** Spawns a process that the harness tracks (and kills if the test process exits). */
export function track(
  command: string,
  args: readonly string[],
  opts: { env?: Record<string, string | undefined>; cwd?: string },
): ChildProcess {
  const child = spawn(command, args, {
    cwd: opts.cwd ?? REPO_ROOT,
    env: childEnv(opts.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  for (const key of SECRET_ENV) recordSecret(opts.env?.[key]);
  const logged = loggedOutput(command, args);
  if (logged !== null) captureOutput(child, logged.label, { stdout: logged.stdout });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/**
 * Runs a command to completion and captures its output. A command still running after the
 * timeout is killed and the promise rejects with what it printed, so a hang is a failure, not a
 * stuck test run.
 */
export function run(command: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = track(command, args, opts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `${command} ${args.join(' ')} did not finish within ${timeoutMs} ms\nstdout: ${Buffer.concat(out).toString()}\nstderr: ${Buffer.concat(err).toString()}`,
        ),
      );
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      recordPrintedSecrets(args, stdoutBytes.toString('utf8'));
      resolve({
        code,
        signal,
        stdout: stdoutBytes.toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        stdoutBytes,
      });
    });
    child.stdin!.on('error', () => undefined); // a command that exits without reading its input
    child.stdin!.end(opts.input === undefined ? undefined : Buffer.from(opts.input));
  });
}

// `shortleaf token` prints a token and `acme eab add` an HMAC key: remember them for the scan.
function recordPrintedSecrets(args: readonly string[], stdout: string): void {
  const at = args.indexOf('apps/ca/src/main.ts');
  if (at < 0) return;
  if (args[at + 1] === 'token') recordSecret(stdout);
  if (args[at + 1] === 'acme' && args[at + 3] === 'add') recordSecret(/^hmac: (\S+)/m.exec(stdout)?.[1]);
}

/** Arguments that start the CLI through tsx, as `pnpm shortleaf` does. */
export const shortleafArgs = (args: readonly string[]): string[] => ['--import', 'tsx', 'apps/ca/src/main.ts', ...args];

/** Runs `shortleaf VERB ...` and returns its exit code and output, whatever they are. */
export function shortleaf(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(process.execPath, shortleafArgs(args), opts);
}

/** Runs `shortleaf VERB ...` and fails the test, showing stderr, unless it exits 0. */
export async function shortleafOk(args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const result = await shortleaf(args, opts);
  if (result.code !== 0) {
    throw new Error(
      `shortleaf ${args.join(' ')} exited ${result.code ?? result.signal}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`,
    );
  }
  return result;
}

/** A private temporary folder for one test file's data; `remove()` deletes it. */
export function tempDir(): { path: string; file(name: string): string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), 'shortleaf-e2e-'));
  const remove = () => {
    recordSecretsIn(path);
    rmSync(path, { recursive: true, force: true });
  };
  return { path, file: (name) => join(path, name), remove };
}
