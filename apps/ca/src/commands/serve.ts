import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { getRequestListener, type HttpBindings } from '@hono/node-server';
import type { Context, Hono } from 'hono';
import { createAcmeApp, createValidator } from '@shortleaf/acme';
import { createApiApp } from '@shortleaf/api';
import { assertTemplatesFitProvisioners, createAuthority, loadActiveIssuer, type LoadedIssuer, type Logger } from '@shortleaf/authority';
import { parseName, readRevocationPointers, withinConstraints } from '@shortleaf/pki';
import { createOcspHttpHandler, createStatusApp, issuerPaths } from '@shortleaf/status';
import { out, parse } from '../cli.js';
import { ConfigError, loadConfig, parseHostPort, type ServeConfig } from '../config.js';
import { dataSealer, openStore } from '../data.js';
import { acquireInstanceLock } from '../instance-lock.js';
import { dataLayout } from '../layout.js';
import { createLogger } from '../logger.js';
import { createMetrics } from '../metrics.js';
import { withRequestIds } from '../request-context.js';
import { startRevocationServices } from '../revocation-services.js';
import { issueServerCredentials, scheduleServerRenewal } from '../server-certificate.js';
import { initDataDir } from './init.js';

const SHUTDOWN_GRACE_MS = 10_000;
/**
 * How often Node looks for connections past limits.headersTimeout / requestTimeout. Its default
 * (30 s) would let a slow client hold a connection that long past a 10 s headersTimeout.
 */
const CONNECTION_CHECK_MS = 1_000;

// TLS 1.3's own suites, then for TLS 1.2 only forward-secret ECDHE with AEAD ciphers (Mozilla's
// "intermediate" profile): no CBC, no RSA key exchange, no SHA-1 MACs.
const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
// Given to every secure context: setSecureContext (the certificate's renewal) starts from Node's defaults.
const TLS_OPTIONS = { minVersion: 'TLSv1.2', ciphers: TLS_CIPHERS, honorCipherOrder: true } as const;

function listen(server: Server | HttpsServer, hostPort: { host: string; port: number }): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(hostPort.port, hostPort.host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Closes a connection whose first request has not arrived `ms` after it was opened (for HTTPS:
 * after its TLS handshake). Node's headersTimeout does not reach a client that connects and then
 * sends nothing, or a byte and then nothing: such a connection would be held for good.
 */
function boundFirstRequest(server: Server | HttpsServer, event: 'connection' | 'secureConnection', ms: number): void {
  const pending = new WeakMap<Socket, NodeJS.Timeout>();
  server.on(event, (socket: Socket) => {
    const timer = setTimeout(() => socket.destroy(), ms);
    pending.set(socket, timer);
    socket.once('close', () => clearTimeout(timer));
  });
  server.on('request', (req: IncomingMessage) => {
    clearTimeout(pending.get(req.socket));
    pending.delete(req.socket);
  });
}

const urlHost = (host: string) => (host.includes(':') ? `[${host}]` : host);

/**
 * Names the CA's HTTPS certificate carries and token audiences accept. Names outside the
 * intermediate's own name constraints are left out (verifiers would refuse the certificate), so a
 * constrained intermediate serves without `localhost`; configure `dnsNames` inside the constraints.
 */
function serverNames(config: ServeConfig, listenHost: string, issuer: LoadedIssuer, logger: Logger): string[] {
  const wanted = new Set(['localhost', '127.0.0.1', '::1', ...config.dnsNames]);
  if (listenHost !== '0.0.0.0' && listenHost !== '::') wanted.add(listenHost);
  if (config.publicUrl !== null) wanted.add(new URL(config.publicUrl).hostname.replace(/^\[|\]$/g, ''));
  const { permittedDns, permittedUri } = issuer.certificate;
  const names = [...wanted].filter((n) => withinConstraints(parseName(n), permittedDns, permittedUri));
  const dropped = [...wanted].filter((n) => !names.includes(n));
  if (dropped.length > 0) logger.warn('server_names_outside_constraints', { dropped, permittedDns, note: 'the intermediate is name-constrained; these names are left out of the HTTPS certificate' });
  return names;
}

/**
 * The URL the banner tells clients to use when `publicUrl` is not set: a name the HTTPS
 * certificate really carries, `localhost` when it can. A name-constrained intermediate leaves
 * `localhost` out, and a banner naming it would send every client into a host-name mismatch.
 */
function defaultPublicUrl(names: readonly string[], port: number): string {
  const host = names.includes('localhost') ? 'localhost' : (names.find((n) => parseName(n).kind === 'dns') ?? names[0] ?? 'localhost');
  return `https://${urlHost(host)}${port === 443 ? '' : `:${port}`}`;
}

/**
 * An intermediate signed with a `--status-url` other than this server's `statusUrl` sends
 * verifiers that check the whole chain somewhere this server does not answer: say so at start.
 */
function checkIntermediateUrls(issuer: LoadedIssuer, statusBase: string, logger: Logger): void {
  const p = readRevocationPointers(issuer.certificate.der);
  const elsewhere = [...p.ocsp, ...p.caIssuers, ...p.crl].filter((u) => !u.startsWith(`${statusBase}/`));
  if (elsewhere.length > 0) {
    logger.warn('intermediate_urls_elsewhere', { issuer: issuer.name, urls: elsewhere, statusUrl: statusBase, note: "the intermediate was signed with another --status-url than this server's statusUrl; verifiers that follow its URLs will not reach this server" });
  }
}

function audiences(config: ServeConfig, names: string[], port: number, path: string): string[] {
  const bases = new Set(names.map((n) => `https://${urlHost(n)}:${port}`));
  if (port === 443) for (const n of names) bases.add(`https://${urlHost(n)}`);
  if (config.publicUrl !== null) bases.add(config.publicUrl.replace(/\/+$/, ''));
  return [...bases].map((b) => `${b}${path}`);
}

function clientCertificate(c: Context): Uint8Array | null {
  const socket = (c.env as HttpBindings).incoming.socket as TLSSocket;
  const peer = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate(false) : null;
  return peer !== null && peer.raw !== undefined ? new Uint8Array(peer.raw) : null;
}

/**
 * Reads a request body straight from Node's request, at most `maxBytes`: cheaper than the Fetch
 * API's stream, and every ACME request has a body. Past the limit the rest is discarded unread.
 */
function readNodeBody(c: Context, maxBytes: number): Promise<Uint8Array> {
  const incoming = (c.env as HttpBindings).incoming;
  return new Promise((resolve, reject) => {
    if (Number(incoming.headers['content-length'] ?? 0) > maxBytes) return reject(new RangeError(`the body is larger than ${maxBytes} bytes`));
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) return void chunks.push(chunk);
      incoming.off('data', onData);
      incoming.resume();
      reject(new RangeError(`the body is larger than ${maxBytes} bytes`));
    };
    incoming.on('data', onData);
    incoming.once('end', () => resolve(Buffer.concat(chunks)));
    incoming.once('error', reject);
  });
}

const requester = (c: Context): string => (c.env as HttpBindings).incoming.socket.remoteAddress ?? 'unknown';

/**
 * `shortleaf serve`: loads config, unseals the intermediate, binds the HTTPS API listener and the
 * plain-HTTP status listener, keeps its own certificate fresh, and shuts down cleanly on SIGTERM.
 */
export async function serveCommand(args: string[]): Promise<void> {
  const { values } = parse(args, { data: { type: 'string' }, config: { type: 'string' }, listen: { type: 'string' }, 'status-listen': { type: 'string' }, 'password-file': { type: 'string' } });
  let config: ServeConfig;
  try {
    config = loadConfig(values.config, { ...(values.listen ? { listen: values.listen } : {}), ...(values['status-listen'] ? { statusListen: values['status-listen'] } : {}) });
  } catch (err) {
    if (err instanceof ConfigError) throw new Error(`configuration: ${err.message}`);
    throw err;
  }
  const logger = createLogger(config.log.level);
  const metrics = config.metrics.enabled ? createMetrics({ now: () => new Date() }) : undefined;
  const dataDir = values.data ?? './data';
  const layout = dataLayout(dataDir);
  if (!existsSync(layout.database)) {
    logger.warn('first_run_init', { dataDir, note: 'no database found: initialising a development CA' });
    await initDataDir(dataDir);
  }
  if (existsSync(layout.offlineRoot)) {
    logger.warn('development_root_present', { path: layout.offlineRoot, note: 'the root key is on this machine; production keeps it offline. The server never reads it.' });
  }
  // Before the database is opened (and migrated): one server per data directory.
  const instanceLock = acquireInstanceLock(dataDir);
  const { sealer } = await dataSealer(dataDir, values['password-file']);
  const { store } = await openStore(dataDir);
  let issuer;
  try {
    issuer = await loadActiveIssuer(store, sealer);
    await assertTemplatesFitProvisioners(config.templates, store);
  } catch (err) {
    await store.close();
    instanceLock.release();
    throw err;
  }

  // Signals are handled from here on, so a SIGTERM right after `listening` still shuts down cleanly.
  let stopRequested: ((signal: string) => void) | undefined;
  const stopSignal = new Promise<string>((resolve) => (stopRequested = resolve));
  const onSignal = (signal: NodeJS.Signals) => stopRequested!(signal);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);

  // Bind first (a port of 0 picks a free one), then derive the URLs that leaves embed.
  // Requests that arrive while start-up finishes wait for it rather than fail: a proxy told "500"
  // by the OCSP responder would refuse good clients.
  let apiApp: Hono | undefined;
  let acmeApp: ReturnType<typeof createAcmeApp> | undefined;
  let statusApp: Hono | undefined;
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  // One HTTPS listener, two front doors: ACME under /acme/, the REST API everywhere else.
  const httpsServer = createHttpsServer(
    {
      requestCert: true,
      rejectUnauthorized: false,
      ...TLS_OPTIONS,
      connectionsCheckingInterval: CONNECTION_CHECK_MS,
      // Counted from the TCP connection, so a client that connects and never sends a ClientHello is
      // cut off too; Node's default would hold it 120 s (headersTimeout only starts after TLS).
      handshakeTimeout: config.limits.handshakeTimeout,
    },
    withRequestIds(
      logger,
      getRequestListener(async (req, env) => {
        await ready;
        return new URL(req.url).pathname.startsWith('/acme/') ? acmeApp!.app.fetch(req, env) : apiApp!.fetch(req, env);
      }),
    ),
  );
  // The status listener: OCSP on plain node:http (its hot path), then /metrics, everything else
  // the Hono app. No request ids here: OCSP logs nothing per response, and its hot path stays bare.
  const statusListener = getRequestListener((req, env) => statusApp!.fetch(req, env));
  let ocspHandler: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  const dispatchStatus = (req: IncomingMessage, res: ServerResponse) => {
    if (!ocspHandler!(req, res) && metrics?.handle(req, res) !== true) void statusListener(req, res);
  };
  const httpServer = createHttpServer({ connectionsCheckingInterval: CONNECTION_CHECK_MS }, (req, res) => {
    if (ocspHandler !== undefined) dispatchStatus(req, res);
    else void ready.then(() => dispatchStatus(req, res));
  });
  // Slow clients (a slowloris sending headers byte by byte) are cut off on both listeners.
  httpsServer.headersTimeout = httpServer.headersTimeout = config.limits.headersTimeout;
  httpsServer.requestTimeout = httpServer.requestTimeout = config.limits.requestTimeout;
  boundFirstRequest(httpsServer, 'secureConnection', config.limits.headersTimeout);
  boundFirstRequest(httpServer, 'connection', config.limits.headersTimeout);
  let renewal: { stop(): void; now(): void } | undefined;
  const pruner = setInterval(() => void store.pruneTokenUses(new Date()).catch(() => undefined), 10 * 60_000);
  pruner.unref();

  let stopRevocation: (() => void) | undefined;
  const shutdown = async (): Promise<void> => {
    renewal?.stop();
    stopRevocation?.();
    clearInterval(pruner);
    // Referenced on purpose: it is what ends connections that never finish (a client still sending
    // a refused body), so the process must live until it fires.
    const force = setTimeout(() => {
      httpsServer.closeAllConnections();
      httpServer.closeAllConnections();
    }, SHUTDOWN_GRACE_MS);
    const close = (server: Server | HttpsServer) =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeIdleConnections();
      });
    await Promise.all([close(httpsServer), close(httpServer)]);
    clearTimeout(force);
    // Validations already started record their outcome before the database closes.
    await acmeApp?.close();
    await store.close();
    instanceLock.release();
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };

  try {
    const apiAddr = parseHostPort(config.listen, 'listen');
    const statusAddr = parseHostPort(config.statusListen, 'statusListen');
    const apiPort = await listen(httpsServer, apiAddr);
    const statusPort = await listen(httpServer, statusAddr);
    const statusBase = (config.statusUrl ?? `http://${urlHost(statusAddr.host === '0.0.0.0' ? '127.0.0.1' : statusAddr.host)}:${statusPort}`).replace(/\/+$/, '');

    const authority = createAuthority({
      store,
      issuer,
      clock: { now: () => new Date() },
      random: (n) => new Uint8Array(randomBytes(n)),
      // Each intermediate's own CRL and certificate: a leaf keeps pointing at its issuer after a rotation.
      urls: (i) => ({ ocsp: `${statusBase}/ocsp`, caIssuers: `${statusBase}${issuerPaths(i.name).caIssuers}`, crl: `${statusBase}${issuerPaths(i.name).crl}` }),
      logger,
      ...(metrics === undefined ? {} : { telemetry: metrics.authority }),
      maxNames: config.limits.maxNames,
      templates: config.templates,
    });
    checkIntermediateUrls(issuer, statusBase, logger);
    const names = serverNames(config, apiAddr.host, issuer, logger);
    const lifetimeMs = config.serverCertificateLifetime;
    const creds = await issueServerCredentials(authority, names, lifetimeMs);
    httpsServer.setSecureContext({ ...TLS_OPTIONS, key: creds.key, cert: creds.cert });
    renewal = scheduleServerRenewal({ authority, names, lifetimeMs, current: creds, logger, apply: (c) => httpsServer.setSecureContext({ ...TLS_OPTIONS, key: c.key, cert: c.cert }) });

    // An activation (`shortleaf intermediate activate`) switches the authority at once; the HTTPS
    // certificate follows, so clients see the new chain without waiting for its renewal.
    const onActivated = (next: LoadedIssuer) => {
      checkIntermediateUrls(next, statusBase, logger);
      void renewal?.now();
    };
    const revocation = await startRevocationServices({ store, sealer, authority, config, logger, statusBase, onActivated, ...(metrics === undefined ? {} : { telemetry: metrics.authority }) });
    metrics?.watchOcspCache(() => revocation.ocsp.stats().entries);
    stopRevocation = () => revocation.stop();

    apiApp = createApiApp({
      authority,
      signAudiences: audiences(config, names, apiPort, '/api/v1/sign'),
      revokeAudiences: audiences(config, names, apiPort, '/api/v1/revoke'),
      revoke: revocation.revoke,
      warnings: revocation.warnings,
      clientCertificate,
      requester,
      roots: revocation.roots,
      intermediates: revocation.intermediates,
      logger,
      maxBodyBytes: config.limits.maxBodyBytes,
      maxJsonDepth: config.limits.maxJsonDepth,
    });
    acmeApp = createAcmeApp({
      store: store.acme,
      certificates: store,
      authority,
      revoke: revocation.revoke,
      sealer,
      validate: createValidator({ ...config.acme.validation, timeoutMs: config.acme.validation.timeout, denyNetworks: config.acme.validation.denyNetworks, allowNetworks: config.acme.validation.allowNetworks }),
      clock: { now: () => new Date() },
      random: (n) => new Uint8Array(randomBytes(n)),
      logger,
      maxBodyBytes: config.limits.maxBodyBytes,
      maxJsonDepth: config.limits.maxJsonDepth,
      maxNames: config.limits.maxNames,
      validationLimits: {
        concurrency: config.acme.validation.concurrency,
        concurrencyPerAccount: config.acme.validation.concurrencyPerAccount,
        maxPendingPerAccount: config.acme.validation.maxPendingPerAccount,
        maxPendingPerProvisioner: config.acme.validation.maxPendingPerProvisioner,
      },
      orderLifetimeMs: config.acme.orderLifetime,
      authorizationLifetimeMs: config.acme.authorizationLifetime,
      readBody: readNodeBody,
      ...(metrics === undefined ? {} : { telemetry: metrics.acme }),
    });
    statusApp = createStatusApp({
      issuers: revocation.published,
      roots: revocation.roots,
      rootCrl: revocation.rootCrl,
      rootCrlOf: revocation.rootCrlOf,
      crlMaxAgeSeconds: config.crl.cacheMaxAge / 1000,
      now: () => new Date(),
      onError: (event, fields) => logger.error(event, fields),
    });

    ocspHandler = createOcspHttpHandler({
      ocsp: (request) => revocation.ocsp.respond(request),
      lookup: (request) => revocation.ocsp.lookup(request),
      now: () => new Date(),
      maxAgeSeconds: config.ocsp.httpMaxAge / 1000,
      onError: (event, fields) => logger.error(event, fields),
      ...(metrics === undefined ? {} : { telemetry: metrics.authority }),
    });
    markReady();
    const publicUrl = config.publicUrl ?? defaultPublicUrl(names, apiPort);
    logger.info('listening', { api: `https://${urlHost(apiAddr.host)}:${apiPort}`, status: `http://${urlHost(statusAddr.host)}:${statusPort}`, publicUrl, statusUrl: statusBase, issuer: authority.issuer.name });
    out(`Shortleaf is serving: API ${publicUrl}, status ${statusBase}`);
  } catch (err) {
    // A start-up failure after binding must not leave a listening socket keeping the process alive,
    // nor requests waiting for a readiness that will not come.
    httpsServer.closeAllConnections();
    httpServer.closeAllConnections();
    await shutdown();
    throw err;
  }

  const signal = await stopSignal;
  logger.info('shutting_down', { signal });
  await shutdown();
  logger.info('stopped');
}

