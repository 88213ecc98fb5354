import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  createIntermediateKey,
  createRootOcspSignerKey,
  importIntermediate,
  importRootCrl,
  importRootOcspSigner,
} from '@shortleaf/authority';
import { csrToPem, encodePem } from '@shortleaf/pki';
import { createRoot, openRoot, signIntermediate, signRootCrl, signRootOcspSigner } from '../ceremony.js';
import { out, parse } from '../cli.js';
import { envSecrets } from '../config.js';
import type { Store } from '@shortleaf/store';
import {
  describeLocation,
  LOCATION_FLAGS,
  openStore,
  passphraseSealer,
  storeLocation,
  type StoreLocation,
} from '../data.js';
import { writeSecretFile } from '../files.js';
import { redactDatabaseUrl } from '../database-url.js';
import { dataLayout, rootLayout } from '../layout.js';
import { dataPassphrase } from '../passphrase.js';
import { addAcmeProvisioner, addJwkProvisioner } from '../provisioners.js';

const NOTICE = `
  ┌──────────────────────────────────────────────────────────────────────────┐
  │ DEVELOPMENT CA. The root key is on this machine, in DATA/offline-root,    │
  │ with its passphrase beside it. In production the root lives on an offline │
  │ machine: run \`shortleaf root init\` there, and only the root certificate  │
  │ and the signed intermediate ever reach the server.                        │
  └──────────────────────────────────────────────────────────────────────────┘`;

const clock = { now: () => new Date() };
const newSecret = () => randomBytes(24).toString('base64url');

/** A location with a data directory: where `init` keeps the development root, passphrase and keys. */
export type InitLocation = StoreLocation & { dataDir: string };

/**
 * Whether `store` may receive a new development CA. SQLite keeps today's rule (a data directory
 * with an active intermediate is left as it is, so `init` is safe to run twice and `serve` can
 * call it on first run). PostgreSQL refuses any database that already holds an intermediate,
 * active or staged: the database is shared, and a second CA in it is never what was meant.
 */
async function mayInitialise(store: Store, location: InitLocation): Promise<boolean> {
  if (location.engine === 'sqlite') return (await store.getActiveIssuer()) === null;
  const issuers = await store.listIssuers();
  if (issuers.length > 0)
    throw new Error(
      `${describeLocation(location)} already holds a CA (intermediate ${issuers.map((i) => i.name).join(', ')}); nothing changed. Start shortleaf serve on it, or init an empty database`,
    );
  return true;
}

/**
 * The development shortcut: offline root (kept in DATA/offline-root), sealed intermediate and
 * root-delegated OCSP responder keys, their signatures and import, a first root CRL, and an
 * `admin` JWK provisioner. On SQLite, safe to run twice; on PostgreSQL, refused for a database
 * that already holds a CA, and two `init`s racing on one database cannot both make one (the
 * second finds the first's lock).
 */
export async function initCa(location: InitLocation): Promise<{ created: boolean }> {
  const layout = dataLayout(location.dataDir);
  mkdirSync(location.dataDir, { recursive: true, mode: 0o700 });
  const store = await openStore(location);
  const lock = location.engine === 'postgres' ? await store.coordination.tryLock('init') : null;
  try {
    if (location.engine === 'postgres' && lock === null)
      throw new Error(`another shortleaf init is running on ${describeLocation(location)}; nothing changed`);
    if (!(await mayInitialise(store, location))) return { created: false };
    const env = envSecrets();
    if (env.password === undefined && !existsSync(layout.password))
      writeSecretFile(layout.password, `${newSecret()}\n`);
    const { passphrase } = await dataPassphrase({ devFile: layout.password });
    const rootFiles = rootLayout(layout.offlineRoot);
    const rootPassword = env.rootPassword ?? newSecret();
    if (env.rootPassword === undefined) {
      mkdirSync(layout.offlineRoot, { recursive: true, mode: 0o700 });
      writeSecretFile(rootFiles.password, `${rootPassword}\n`);
    }
    createRoot({ dir: layout.offlineRoot, passphrase: rootPassword, commonName: 'Shortleaf Development Root CA' });
    const sealer = await passphraseSealer(passphrase, store);
    const csr = await createIntermediateKey(store, sealer, clock, {
      id: randomUUID(),
      name: 'primary',
      commonName: 'Shortleaf Intermediate CA',
    });
    const ocspCsr = await createRootOcspSignerKey(store, sealer, clock, { id: randomUUID(), issuerName: 'primary' });
    const root = openRoot(layout.offlineRoot, rootPassword);
    const cert = signIntermediate({ root, csrPem: csrToPem(csr) });
    const ocspCert = signRootOcspSigner({ root, csrPem: csrToPem(ocspCsr) });
    await importIntermediate(store, clock, {
      name: 'primary',
      certificatePem: encodePem('CERTIFICATE', cert),
      rootPem: encodePem('CERTIFICATE', root.certificate.der),
    });
    await importRootOcspSigner(store, {
      issuerName: 'primary',
      certificatePem: encodePem('CERTIFICATE', ocspCert),
      root: root.certificate,
    });
    // Proxies that check the whole chain need the root's CRL too; give them a first one.
    await importRootCrl(store, clock, signRootCrl({ root, dir: layout.offlineRoot }).der);
    const adminKey = join(layout.provisionerKeys, 'admin.jwk');
    await addJwkProvisioner(store, { name: 'admin', keyOut: adminKey, policy: {} });
    await addAcmeProvisioner(store, { name: 'acme', policy: {}, options: {} });
    process.stderr.write(`${NOTICE}\n`);
    return { created: true };
  } finally {
    await lock?.release();
    await store.close();
  }
}

/** `shortleaf init [--data DIR] [--database URL]`. */
export async function initCommand(args: string[]): Promise<void> {
  const { values } = parse(args, LOCATION_FLAGS);
  const dataDir = values.data ?? './data';
  const location: InitLocation = { ...storeLocation({ ...values, data: dataDir }), dataDir };
  const { created } = await initCa(location);
  const layout = dataLayout(dataDir);
  if (!created) {
    out(`${dataDir} already holds an active intermediate; nothing to do`);
    return;
  }
  const database = location.engine === 'postgres' ? ` --database ${redactDatabaseUrl(location.url)}` : '';
  out(`initialised ${describeLocation(location)}${location.engine === 'postgres' ? ` (local files in ${dataDir})` : ''}
  root certificate (trust this):   ${rootLayout(layout.offlineRoot).certificate}
  admin provisioner key (0600):    ${join(layout.provisionerKeys, 'admin.jwk')}
  ACME directory (once serving):   https://localhost:9443/acme/acme/directory
  next: shortleaf serve --data ${dataDir}${database}`);
}
