import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { randomBytes } from 'node:crypto';

/**
 * Writes a file atomically: a temporary file in the same folder, created with its final mode
 * (so a key is never briefly world-readable), fsynced, then renamed over the target.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o644): void {
  const dir = dirname(path);
  // A folder we create for a secret is private too; an existing folder is the operator's choice.
  mkdirSync(dir, { recursive: true, mode: mode & 0o077 ? 0o755 : 0o700 });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Writes a secret (private key, passphrase): mode 0600, atomically. */
export const writeSecretFile = (path: string, data: string | Uint8Array): void => writeFileAtomic(path, data, 0o600);

/** Refuses to overwrite: ceremonies must not silently replace a key. */
export function assertAbsent(path: string): void {
  if (existsSync(path)) throw new Error(`${path} already exists; refusing to overwrite it`);
}
