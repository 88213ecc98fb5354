// The library pieces the end-to-end tests use directly (to read the database, to tamper with it,
// to mint tokens), in one place.
import { mintToken as mint } from '@shortleaf/client';
import { recordSecret } from './secret-log.js';

export { SqliteStore, sealSecret } from '@shortleaf/store';
export { signAudience } from '@shortleaf/client';
export * as jose from 'jose';
export { default as Database } from 'better-sqlite3';

/** `mintToken` of @shortleaf/client, recording each token for the log scan (helpers/secret-log.ts). */
export async function mintToken(...args: Parameters<typeof mint>): Promise<string> {
  const token = await mint(...args);
  recordSecret(token);
  return token;
}
