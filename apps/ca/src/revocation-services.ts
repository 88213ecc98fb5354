import {
  createCrlPublisher,
  createOcspResponder,
  createOcspSignerManager,
  createRevoker,
  issuerWarnings,
  latestRootCrl,
  loadRootDelegatedResponder,
  parseDuration,
  rootCrlWarnings,
  type Authority,
  type KeySealer,
  type LoadedIssuer,
  type Logger,
  type RootCrlRow,
  type Telemetry,
} from '@shortleaf/authority';
import { parseCrl } from '@shortleaf/pki';
import type { SqliteStore } from '@shortleaf/store';
import type { ServeConfig } from './config.js';
import { CRL_NUMBER_FLOOR_SETTING } from './layout.js';

const WATCH_INTERVAL_MS = 1_000;
const OCSP_REFRESH_INTERVAL_MS = 60_000;
const WARNING_LOG_INTERVAL_MS = 3_600_000;

/** The CRL number floor `shortleaf restore` recorded in the database (commands/backup.ts), if any. */
async function crlNumberFloor(store: SqliteStore): Promise<{ minNumber?: bigint }> {
  const value = await store.getSetting(CRL_NUMBER_FLOOR_SETTING);
  return value !== null && /^\d+$/.test(value) ? { minNumber: BigInt(value) } : {};
}

/**
 * Wires revocation for `serve`: the CRL publisher, the OCSP responder with its delegated signers,
 * the revoker that tells both, and a watcher that picks up revocations and root CRLs another
 * process (the `shortleaf revoke` and `root-crl import` commands) wrote to the database.
 */
export async function startRevocationServices(opts: {
  store: SqliteStore;
  sealer: KeySealer;
  authority: Authority;
  issuer: LoadedIssuer;
  config: ServeConfig;
  logger: Logger;
  crlUrl: string;
  /** Where revocations and published CRLs are counted (metrics); nothing is recorded when absent. */
  telemetry?: Telemetry;
}) {
  const { store, issuer, config, logger } = opts;
  const clock = { now: () => new Date() };
  const root = issuer.roots.find((r) => Buffer.from(r.subjectDer).equals(issuer.certificate.issuerDer)) ?? null;
  const rootResponder = root === null ? null : await loadRootDelegatedResponder(store.revocations, opts.sealer, issuer.id, root);
  if (rootResponder === null) logger.warn('no_root_ocsp_signer', { note: "OCSP requests for the intermediate's own status get `unauthorized`; make one with `intermediate csr --ocsp-out` at the ceremony" });

  let responder: ReturnType<typeof createOcspResponder> | undefined;
  const signers = createOcspSignerManager({ authority: opts.authority, lifetimeMs: parseDuration(config.ocsp.signerLifetime), logger, onRotate: () => responder?.clear() });
  await signers.start();
  responder = createOcspResponder({
    store,
    issuer,
    intermediateResponder: () => signers.current(),
    rootResponder,
    clock,
    logger,
    validityMs: parseDuration(config.ocsp.validity),
    maxCacheEntries: config.ocsp.cacheEntries,
  });
  const ocsp = responder;
  await ocsp.reloadRootCrl();

  const crls = createCrlPublisher({
    store,
    issuer,
    clock,
    logger,
    distributionPoint: opts.crlUrl,
    validityMs: parseDuration(config.crl.validity),
    refreshAfterMs: parseDuration(config.crl.refreshAfter),
    rebuildDelayMs: parseDuration(config.crl.rebuildDelay),
    ...(opts.telemetry === undefined ? {} : { telemetry: opts.telemetry }),
    ...(await crlNumberFloor(store)),
  });
  await crls.start();

  const onRevoked = async (serial: string) => {
    await ocsp.resign(serial);
    crls.requestRebuild();
  };
  // Revocations this process made are handled at once; the watcher is for other processes'.
  const handledHere = new Set<string>();
  const revoke = createRevoker({
    store,
    clock,
    logger,
    ...(opts.telemetry === undefined ? {} : { telemetry: opts.telemetry }),
    onRevoked: async (serial) => {
      handledHere.add(serial);
      await onRevoked(serial);
    },
  });

  let rootCrl: RootCrlRow | null = root === null ? null : await latestRootCrl(store, root.der);
  const warnBeforeMs = parseDuration(config.rootCrl.warnBefore);
  const issuerWarnBeforeMs = parseDuration(config.intermediate.warnBefore);
  let parsedRootCrl = rootCrl === null ? null : parseCrl(rootCrl.der);
  const intermediateWarnings = () => issuerWarnings(issuer.certificate, parsedRootCrl, clock.now(), issuerWarnBeforeMs);
  const rootWarnings = () => rootCrlWarnings(rootCrl, clock.now(), warnBeforeMs);
  const warnings = () => [...intermediateWarnings(), ...rootWarnings()];

  const logWarnings = () => {
    for (const w of intermediateWarnings()) logger.warn('intermediate_warning', { warning: w });
    for (const w of rootWarnings()) logger.warn('root_crl_warning', { warning: w });
  };

  // Another process may write revocations or import a root CRL: look every second.
  let lastRowid = (await store.revocations.since(0)).at(-1)?.rowid ?? 0;
  let watching = false;
  const watcher = setInterval(() => {
    if (watching) return;
    watching = true;
    void (async () => {
      for (const r of await store.revocations.since(lastRowid)) {
        lastRowid = r.rowid;
        if (!handledHere.delete(r.serial)) await onRevoked(r.serial);
      }
      if (root !== null) {
        const latest = await latestRootCrl(store, root.der);
        if (latest !== null && latest.number !== rootCrl?.number) {
          rootCrl = latest;
          parsedRootCrl = parseCrl(latest.der);
          logWarnings();
          await ocsp.reloadRootCrl();
          logger.info('root_crl_loaded', { number: latest.number.toString(), nextUpdate: latest.nextUpdate.toISOString() });
        }
      }
    })()
      .catch((err: Error) => logger.error('revocation_watch_failed', { error: err.message }))
      .finally(() => (watching = false));
  }, WATCH_INTERVAL_MS);
  watcher.unref();

  const refresher = setInterval(() => void ocsp.refresh().catch((err: Error) => logger.error('ocsp_refresh_failed', { error: err.message })), OCSP_REFRESH_INTERVAL_MS);
  refresher.unref();
  logWarnings();
  const warner = setInterval(logWarnings, WARNING_LOG_INTERVAL_MS);
  warner.unref();

  return {
    crls,
    ocsp,
    revoke,
    rootCrl: () => rootCrl,
    warnings,
    stop(): void {
      clearInterval(watcher);
      clearInterval(refresher);
      clearInterval(warner);
      signers.stop();
      crls.stop();
    },
  };
}
