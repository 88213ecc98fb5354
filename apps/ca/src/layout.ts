import { join } from 'node:path';

/** Where things live under a data directory. The server reads only `database` and `password`. */
export function dataLayout(dataDir: string) {
  return {
    dataDir,
    database: join(dataDir, 'shortleaf.db'),
    /** Development-only passphrase file written by `shortleaf init`; production uses SHORTLEAF_PASSWORD. */
    password: join(dataDir, 'password'),
    /** Development-only root kept by `shortleaf init`; production keeps it on an offline machine. */
    offlineRoot: join(dataDir, 'offline-root'),
    provisionerKeys: join(dataDir, 'provisioners'),
  };
}

/** Files of an offline root directory made by `shortleaf root init`. */
export function rootLayout(dir: string) {
  return {
    certificate: join(dir, 'root.crt'),
    key: join(dir, 'root.key'),
    password: join(dir, 'password'),
    crlState: join(dir, 'root-crl.json'),
  };
}

/** Settings key of the lowest CRL number a restored database may publish next (see commands/backup.ts). */
export const CRL_NUMBER_FLOOR_SETTING = 'crl.minNumber';
