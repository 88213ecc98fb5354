import { openSealer, openStore as openEngine, type SealSettings, type Store } from '@shortleaf/store';
import type { KeySealer } from '@shortleaf/authority';
import { dataLayout } from './layout.js';
import { dataPassphrase } from './passphrase.js';

/**
 * Opens a data directory's database (migrating it) without touching any secret. Typed by the
 * engine-neutral `Store`, so nothing the CLI and `serve` build on depends on the engine below.
 */
export async function openStore(dataDir: string): Promise<{ store: Store; layout: ReturnType<typeof dataLayout> }> {
  const layout = dataLayout(dataDir);
  return { store: await openEngine({ engine: 'sqlite', path: layout.database }), layout };
}

/** Opens a data directory's database for one CLI verb and closes it whatever happens. */
export async function withStore<T>(dataDir: string, use: (store: Store) => Promise<T>): Promise<T> {
  const { store } = await openStore(dataDir);
  try {
    return await use(store);
  } finally {
    await store.close();
  }
}

/**
 * A KeySealer bound to a passphrase, which stays in its closure only. The key is derived once,
 * here, from the passphrase and the database's sealing salt (made on first use), so unsealing a
 * row costs microseconds rather than a scrypt run per row (an EAB attempt used to cost ~120 ms).
 */
export function passphraseSealer(passphrase: string, settings: SealSettings): Promise<KeySealer> {
  return openSealer(passphrase, settings);
}

/** Resolves the data passphrase (env, file, dev file, prompt) and returns a sealer for it. */
export async function dataSealer(
  dataDir: string,
  passwordFile?: string,
): Promise<{ sealer: KeySealer; source: string }> {
  const { passphrase, source } = await dataPassphrase({
    ...(passwordFile === undefined ? {} : { passwordFile }),
    devFile: dataLayout(dataDir).password,
  });
  const sealer = await withStore(dataDir, (store) => passphraseSealer(passphrase, store));
  return { sealer, source };
}
