import { readFileSync, statSync } from 'node:fs';

/** What `--token-file` holds right now: a token, or a sentence saying why there is none (never its content). */
export type TokenFileReading = { token: string } | { error: string };

/**
 * Reads the token file as it is now. The agent calls this every time it must authenticate
 * (bootstrap, after a revocation or expiry, when the lineage aged out) and never caches the result,
 * because the file's owner replaces it: a kubelet rotates a projected service-account token
 * before it expires, and tooling renames a fresh one-time token over the old one. Whitespace
 * around the token is trimmed (a trailing newline from `echo`). A missing, unreadable or empty
 * file is an `error` that names the file and the cause; the content never appears in it.
 */
export function readTokenFile(path: string): TokenFileReading {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const { code } = err as NodeJS.ErrnoException;
    const cause =
      code === 'ENOENT'
        ? 'it does not exist'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'it is a directory'
            : (code ?? (err as Error).message);
    return { error: `cannot read the token file ${path}: ${cause}` };
  }
  const token = text.trim();
  if (token === '') return { error: `the token file ${path} is empty` };
  return { token };
}

/**
 * A fingerprint of the file's identity and metadata (inode, size, modification time) that
 * changes when the file is replaced or rewritten: a kubelet swaps a symlink to a new directory,
 * tooling renames a new file over the old one. 'missing' while it cannot be looked at.
 */
export function tokenFileStamp(path: string): string {
  try {
    const s = statSync(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}
