import { existsSync } from 'node:fs';
import {
  assertTemplatesFitProvisioners,
  loadActiveIssuer,
  type CertificateTemplate,
  type KeySealer,
  type LoadedIssuer,
  type Logger,
} from '@shortleaf/authority';
import { initDataDir } from '../commands/init.js';
import { dataSealer, openStore } from '../data.js';
import { acquireInstanceLock } from '../instance-lock.js';
import { dataLayout } from '../layout.js';

type Store = Awaited<ReturnType<typeof openStore>>['store'];

/**
 * Opens the data directory `serve` runs on: initialises a development CA on first run, warns
 * when the development root sits beside it, takes the one-server-per-directory lock (before the
 * database is opened and migrated), unseals the active intermediate and checks the templates
 * against the provisioners. On failure nothing is left open or locked.
 */
export async function openDataDir(opts: {
  dataDir: string;
  passwordFile: string | undefined;
  templates: ReadonlyMap<string, CertificateTemplate>;
  logger: Logger;
}): Promise<{ store: Store; sealer: KeySealer; issuer: LoadedIssuer; release(): void }> {
  const { dataDir, logger } = opts;
  const layout = dataLayout(dataDir);
  if (!existsSync(layout.database)) {
    logger.warn('first_run_init', { dataDir, note: 'no database found: initialising a development CA' });
    await initDataDir(dataDir);
  }
  if (existsSync(layout.offlineRoot)) {
    logger.warn('development_root_present', {
      path: layout.offlineRoot,
      note: 'the root key is on this machine; production keeps it offline. The server never reads it.',
    });
  }
  const instanceLock = acquireInstanceLock(dataDir);
  const { sealer } = await dataSealer(dataDir, opts.passwordFile);
  const { store } = await openStore(dataDir);
  try {
    const issuer = await loadActiveIssuer(store, sealer);
    await assertTemplatesFitProvisioners(opts.templates, store);
    return { store, sealer, issuer, release: () => instanceLock.release() };
  } catch (err) {
    await store.close();
    instanceLock.release();
    throw err;
  }
}
