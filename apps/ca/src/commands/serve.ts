import { randomBytes } from 'node:crypto';
import { createAuthority, type Clock, type LoadedIssuer } from '@shortleaf/authority';
import { issuerPaths } from '@shortleaf/status';
import { out, parse } from '../cli.js';
import { ConfigError, loadConfig, parseHostPort, type ServeConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { createMetrics } from '../metrics.js';
import { startRevocationServices } from '../revocation-services.js';
import { sharedAcmeNonces } from '../serve/acme-nonces.js';
import { storeLocation } from '../data.js';
import { openDataDir } from '../serve/data-dir.js';
import { createFrontDoors } from '../serve/front-doors.js';
import { closeListeners, createListeners, dropConnections, listen } from '../serve/listeners.js';
import { checkIntermediateUrls, defaultPublicUrl, serverNames, statusBaseUrl, urlHost } from '../serve/names.js';
import { pendingListeners } from '../serve/pending.js';
import { startPruner } from '../serve/pruner.js';
import { keepListenerCertificate } from '../serve/server-certificate.js';
import { stopSignals } from '../serve/signals.js';
import { createStatusDoors } from '../serve/status-doors.js';

const SHUTDOWN_GRACE_MS = 10_000;

function serveConfig(values: {
  config?: string | undefined;
  listen?: string | undefined;
  'status-listen'?: string | undefined;
}): ServeConfig {
  try {
    return loadConfig(values.config, {
      ...(values.listen ? { listen: values.listen } : {}),
      ...(values['status-listen'] ? { statusListen: values['status-listen'] } : {}),
    });
  } catch (err) {
    if (err instanceof ConfigError) throw new Error(`configuration: ${err.message}`);
    throw err;
  }
}

/**
 * `shortleaf serve`: loads config, unseals the intermediate, binds the HTTPS API listener and the
 * plain-HTTP status listener, keeps its own certificate fresh, and shuts down cleanly on SIGTERM.
 * The wiring lives in ../serve/: this reads as the order things happen in.
 */
export async function serveCommand(args: string[]): Promise<void> {
  const { values } = parse(args, {
    data: { type: 'string' },
    database: { type: 'string' },
    config: { type: 'string' },
    listen: { type: 'string' },
    'status-listen': { type: 'string' },
    'password-file': { type: 'string' },
  });
  const config = serveConfig(values);
  // The one clock and source of randomness everything below is given.
  const clock: Clock = { now: () => new Date() };
  const random = (n: number) => new Uint8Array(randomBytes(n));
  const logger = createLogger(config.log.level);
  const metrics = config.metrics.enabled ? createMetrics({ now: () => clock.now() }) : undefined;
  const { store, sealer, issuer, release } = await openDataDir({
    location: storeLocation(values, { configUrl: config.database.url, defaultDataDir: './data' }),
    passwordFile: values['password-file'],
    templates: config.templates,
    logger,
  });

  const signals = stopSignals();
  // Bind first (a port of 0 picks a free one), then derive the URLs that leaves embed.
  const pending = pendingListeners(logger);
  const listeners = createListeners({ limits: config.limits, https: pending.https, http: pending.http });

  let stopRenewal: (() => void) | undefined;
  let stopRevocation: (() => void) | undefined;
  let stopPruner: (() => void) | undefined;
  let closeDoors: (() => Promise<void>) | undefined;
  const shutdown = async (): Promise<void> => {
    stopRenewal?.();
    stopRevocation?.();
    stopPruner?.();
    await closeListeners(listeners, SHUTDOWN_GRACE_MS);
    // Validations already started record their outcome before the database closes.
    await closeDoors?.();
    await store.close();
    release();
    signals.release();
  };

  try {
    const apiAddr = parseHostPort(config.listen, 'listen');
    const statusAddr = parseHostPort(config.statusListen, 'statusListen');
    const apiPort = await listen(listeners.https, apiAddr);
    const statusPort = await listen(listeners.http, statusAddr);
    const statusBase = statusBaseUrl(config.statusUrl, statusAddr, statusPort);

    const authority = createAuthority({
      store,
      issuer,
      clock,
      random,
      // Each intermediate's own CRL and certificate: a leaf keeps pointing at its issuer after a rotation.
      urls: (i) => ({
        ocsp: `${statusBase}/ocsp`,
        caIssuers: `${statusBase}${issuerPaths(i.name).caIssuers}`,
        crl: `${statusBase}${issuerPaths(i.name).crl}`,
      }),
      logger,
      ...(metrics === undefined ? {} : { telemetry: metrics.authority }),
      maxNames: config.limits.maxNames,
      templates: config.templates,
    });
    checkIntermediateUrls(issuer, statusBase, logger);
    const names = serverNames(config, apiAddr.host, issuer, logger);
    const renewal = await keepListenerCertificate({
      server: listeners.https,
      authority,
      names,
      lifetimeMs: config.serverCertificateLifetime,
      logger,
      clock,
    });
    stopRenewal = () => renewal.stop();

    // An activation (`shortleaf intermediate activate`) switches the authority at once; the HTTPS
    // certificate follows, so clients see the new chain without waiting for its renewal.
    const onActivated = (next: LoadedIssuer) => {
      checkIntermediateUrls(next, statusBase, logger);
      renewal.now();
    };
    const revocation = await startRevocationServices({
      store,
      sealer,
      authority,
      config,
      clock,
      logger,
      statusBase,
      onActivated,
      ...(metrics === undefined ? {} : { telemetry: metrics.authority }),
    });
    metrics?.watchOcspCache(() => revocation.ocsp.stats().entries);
    stopRevocation = () => revocation.stop();

    const nonces = await sharedAcmeNonces({ store, sealer, clock, random });
    stopPruner = startPruner({ store, nonces, clock, logger }).stop;

    const doors = createFrontDoors({
      config,
      store,
      sealer,
      authority,
      revocation,
      names,
      apiPort,
      clock,
      random,
      logger,
      metrics,
      nonces,
    });
    closeDoors = doors.close;
    pending.open({ root: doors.root, status: createStatusDoors({ config, revocation, clock, logger, metrics }) });
    const publicUrl = config.publicUrl ?? defaultPublicUrl(names, apiPort);
    logger.info('listening', {
      api: `https://${urlHost(apiAddr.host)}:${apiPort}`,
      status: `http://${urlHost(statusAddr.host)}:${statusPort}`,
      publicUrl,
      statusUrl: statusBase,
      issuer: authority.issuer.name,
    });
    out(`Shortleaf is serving: API ${publicUrl}, status ${statusBase}`);
  } catch (err) {
    // A start-up failure after binding must not leave a listening socket keeping the process alive,
    // nor requests waiting for a readiness that will not come.
    dropConnections(listeners);
    await shutdown();
    throw err;
  }

  const signal = await signals.signal;
  logger.info('shutting_down', { signal });
  await shutdown();
  logger.info('stopped');
}
