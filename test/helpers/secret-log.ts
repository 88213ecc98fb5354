// Evidence for "no key, token or passphrase is ever logged": when scripts/run-tests.mjs sets
// SHORTLEAF_TEST_LOG_DIR, every line our processes log is appended to a file there, and every
// secret the tests create is recorded beside them. After the whole run, run-tests.mjs scans the
// logs for PEM private keys, JWT-shaped strings and each recorded secret.
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const LOG_DIR = process.env.SHORTLEAF_TEST_LOG_DIR;
let counter = 0;

/** Remembers a secret value (passphrase, token, HMAC key) so the final scan looks for it in every log. */
export function recordSecret(value: string | undefined): void {
  if (LOG_DIR === undefined || value === undefined) return;
  const secret = value.trim();
  if (secret.length < 8) return; // too short to search for without false hits
  appendFileSync(join(LOG_DIR, `secrets-${process.pid}.jsonl`), `${JSON.stringify(secret)}\n`, { mode: 0o600 });
}

/**
 * Appends a child's output to a log file: stderr always (it is where our processes log), stdout
 * only when `stdout` is true. Commands whose job is to print a secret (`shortleaf token`,
 * `acme eab add`) keep their stdout out of the logs: it is their output, not a log.
 */
export function captureOutput(child: ChildProcess, label: string, opts: { stdout: boolean }): void {
  if (LOG_DIR === undefined) return;
  // One file per stream, written raw: a prefix added per chunk could split a secret in two.
  const base = join(LOG_DIR, `${process.pid}-${++counter}-${label.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 40)}`);
  const append = (stream: string) => (d: Buffer) => appendFileSync(`${base}.${stream}.log`, d, { mode: 0o600 });
  child.stderr?.on('data', append('stderr'));
  if (opts.stdout) child.stdout?.on('data', append('stdout'));
}

/**
 * Records the secrets a test folder holds before it is deleted: passphrase files (`password`,
 * any `*password*` file) and the private part (`d`) of JWK key files.
 */
export function recordSecretsIn(dir: string, depth = 4): void {
  if (LOG_DIR === undefined || depth < 0) return;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const path = join(dir, name);
    try {
      const st = statSync(path);
      if (st.isDirectory()) recordSecretsIn(path, depth - 1);
      else if (st.size > 64 * 1024) continue;
      else if (/password/i.test(name)) recordSecret(readFileSync(path, 'utf8'));
      else if (name.endsWith('.jwk')) {
        const jwk = JSON.parse(readFileSync(path, 'utf8')) as { d?: unknown };
        if (typeof jwk.d === 'string') recordSecret(jwk.d);
      }
    } catch {
      /* vanished or not ours to read: nothing to record */
    }
  }
}
