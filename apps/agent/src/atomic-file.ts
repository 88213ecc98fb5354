import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** The infix of our temporary files: `NAME.tmp-<random>` beside `NAME`, so a rename never crosses file systems. */
const TEMP_INFIX = '.tmp-';
const TEMP_NAME = /^[0-9a-f]{16}$/;

/** A fresh temporary path for `path`, in its folder. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `${basename(path)}${TEMP_INFIX}${randomBytes(8).toString('hex')}`);
}

/** Whether `candidate` is a temporary file that `tempPathFor(target)` could have made. */
export function isTempPathFor(target: string, candidate: string): boolean {
  if (dirname(candidate) !== dirname(target)) return false;
  const prefix = `${basename(target)}${TEMP_INFIX}`;
  const name = basename(candidate);
  return name.startsWith(prefix) && TEMP_NAME.test(name.slice(prefix.length));
}

/** The temporary files for `target` that exist in its folder (left by a write a kill interrupted). */
export function listTempFiles(target: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dirname(target));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names.map((n) => join(dirname(target), n)).filter((p) => isTempPathFor(target, p));
}

/** Creates the folder of `path` if needed; a folder we create for a secret is private. */
export function ensureFolder(path: string, mode: number): void {
  mkdirSync(dirname(path), { recursive: true, mode: mode & 0o077 ? 0o755 : 0o700 });
}

/**
 * Writes `data` to a new temporary file beside `target` and fsyncs it. The file is created with
 * `mode` (the umask can only narrow it) and O_EXCL, so a secret is never briefly readable by
 * others and never written through a link someone planted. Returns the temporary path.
 */
export function writeTempFile(target: string, data: string | Uint8Array, mode: number): string {
  const tmp = tempPathFor(target);
  const fd = openSync(tmp, 'wx', mode);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let done = 0;
    while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  return tmp;
}

/**
 * Makes the renames and unlinks done in a folder durable. A no-op where folders cannot be
 * opened for fsync (Windows).
 */
export function fsyncFolder(folder: string): void {
  let fd: number;
  try {
    fd = openSync(folder, 'r');
  } catch (err) {
    if (process.platform === 'win32') return;
    throw err;
  }
  try {
    fsyncSync(fd);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EPERM' && code !== 'EISDIR') throw err;
  } finally {
    closeSync(fd);
  }
}

/**
 * Replaces `path` atomically: a temporary file in the same folder, created with `mode`, fsynced,
 * renamed over the target, then the folder fsynced. Readers see the old content or the new one,
 * never a mix, even if the process is killed at any point.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): void {
  ensureFolder(path, mode);
  const tmp = writeTempFile(path, data, mode);
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncFolder(dirname(path));
}
