// Public API of @shortleaf/store: the engines and what only apps wire (sealing, locks). The
// engine-neutral records and errors are `@shortleaf/store/contracts`, re-exported here so existing
// imports keep working; the authority and ACME import from there and never load a driver.
export * from './contracts/index.js';
export { openStore, type StoreEngineOptions } from './open-store.js';
// Types only: the PostgreSQL engine (and `pg`) loads when openStore is asked for it, never here.
export type { PgOpenOptions } from './postgres/pg-store.js';
export {
  SEAL_SALT_SETTING,
  openSealer,
  scryptKdf,
  sealSecret,
  unsealSecret,
  type Kdf,
  type KdfParams,
  type SealSettings,
  type Sealer,
} from './seal.js';
export { tryLockFile, type FileLock } from './file-lock.js';
export { SqliteStore } from './sqlite-store.js';
// A type only: the PostgreSQL engine (and `pg`) loads when openStore is given a postgres URL.
export type { PostgresStore } from './postgres/pg-store.js';
export type { OpenOptions } from './records.js';
export { RevocationRepository } from './revocation-repository.js';
export { AcmeRepository } from './acme-repository.js';
