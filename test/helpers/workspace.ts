// The library pieces the end-to-end tests use directly (to read the database, to tamper with it,
// to mint tokens), in one place.
export { SqliteStore, sealSecret } from '@shortleaf/store';
export { mintToken, signAudience } from '@shortleaf/client';
export * as jose from 'jose';
export { default as Database } from 'better-sqlite3';
