import { existsSync, readFileSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { envSecrets } from './config.js';

/** Reads a passphrase from the terminal without echoing it. */
export async function prompt(question: string): Promise<string> {
  if (!process.stdin.isTTY) throw new Error('no terminal to ask for a passphrase on');
  let muted = false;
  const output = new Writable({
    write(chunk, _enc, cb) {
      if (!muted) process.stderr.write(chunk as Buffer);
      cb();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  return new Promise((resolve) => {
    rl.question(question, (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
    muted = true;
  });
}

/**
 * Refuses a secret file (passphrase, private key) that group or others may read or write: it may
 * already have leaked, and using it would hide that. The message names the file and the fix.
 */
export function assertPrivateFile(path: string): void {
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077)
    throw new Error(
      `${path} is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}); refusing to use a shared secret: chmod 600 ${path}`,
    );
}

function readSecretFile(path: string): string {
  assertPrivateFile(path);
  return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
}

/**
 * The passphrase that seals the intermediate key: SHORTLEAF_PASSWORD, else `--password-file`,
 * else the development file `shortleaf init` wrote (when there is a data directory), else a prompt
 * on a terminal.
 */
export async function dataPassphrase(opts: {
  passwordFile?: string;
  devFile?: string;
}): Promise<{ passphrase: string; source: string }> {
  const env = envSecrets().password;
  if (env !== undefined) return { passphrase: env, source: 'SHORTLEAF_PASSWORD' };
  if (opts.passwordFile !== undefined)
    return { passphrase: readSecretFile(opts.passwordFile), source: opts.passwordFile };
  if (opts.devFile !== undefined && existsSync(opts.devFile))
    return { passphrase: readSecretFile(opts.devFile), source: opts.devFile };
  if (process.stdin.isTTY)
    return { passphrase: await prompt('Passphrase for the sealed intermediate key: '), source: 'terminal' };
  throw new Error('no passphrase: set SHORTLEAF_PASSWORD or pass --password-file FILE');
}

/** The root key's passphrase: SHORTLEAF_ROOT_PASSWORD, else a file, else a prompt. */
export async function rootPassphrase(opts: { passwordFile?: string; confirm?: boolean }): Promise<string> {
  const env = envSecrets().rootPassword;
  if (env !== undefined) return env;
  if (opts.passwordFile !== undefined && existsSync(opts.passwordFile)) return readSecretFile(opts.passwordFile);
  if (!process.stdin.isTTY)
    throw new Error('no root passphrase: set SHORTLEAF_ROOT_PASSWORD (or run on a terminal to be asked)');
  const first = await prompt('Root key passphrase: ');
  if (opts.confirm) {
    const again = await prompt('Repeat the root key passphrase: ');
    if (again !== first) throw new Error('the passphrases differ');
  }
  if (first.length < 8) throw new Error('the root key passphrase needs at least 8 characters');
  return first;
}
