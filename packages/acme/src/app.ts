import type { Authority, Clock, KeySealer, Logger, Revoke } from '@shortleaf/authority';
import { Hono, type Context } from 'hono';
import { keyChange, listOrders, newAccount, updateAccount } from './accounts.js';
import { authorization, challenge } from './authorizations.js';
import type { AcmeCertificateStore, AcmeEnv, AcmeServices } from './context.js';
import { AcmeError, acmeErrorFor } from './errors.js';
import { createKeyCache } from './jws.js';
import { createNoncePool, type NoncePool } from './nonces.js';
import { certificate, finalize, getOrder, newOrder } from './orders.js';
import { provisionerContext, responseHeaders, signedRequest, type BodyReader, type KeyMode } from './pipeline.js';
import { NO_ACME_TELEMETRY, type AcmeStore, type AcmeTelemetry } from './ports.js';
import { renewalInfo } from './renewal-info.js';
import { revokeCert } from './revocation.js';
import { createValidationRunner, type ValidationLimits } from './validation-runner.js';
import type { Validator } from './validators/index.js';

export interface AcmeAppOptions {
  store: AcmeStore;
  certificates: AcmeCertificateStore;
  authority: Pick<Authority, 'refuseNames' | 'checkLifetime' | 'issueForOrder' | 'chainFor'>;
  revoke: Revoke;
  sealer: KeySealer;
  validate: Validator;
  clock: Clock;
  random(n: number): Uint8Array;
  logger: Logger;
  maxBodyBytes: number;
  /** How long an order (and its new authorizations) may stay unfinished. */
  orderLifetimeMs: number;
  /** How long a valid authorization is reused for new orders of the same account. */
  authorizationLifetimeMs: number;
  /** Reads request bodies from the host server's native request; the Fetch API when absent. */
  readBody?: BodyReader;
  /** Counts order states and failed validations; nothing is recorded when absent. */
  telemetry?: AcmeTelemetry;
  /** Deepest JSON nesting a payload may have (`limits.maxJsonDepth`); 8 when absent. */
  maxJsonDepth?: number;
  /** Most identifiers one order may carry (`limits.maxNames`); 100 when absent. */
  maxNames?: number;
  /** How much validation runs at once and may wait, per account and provisioner; DEFAULT_VALIDATION_LIMITS where absent. */
  validationLimits?: Partial<ValidationLimits>;
  /**
   * Where nonces are spent: a pool shared with other instances on one database
   * (`createSharedNoncePool`); a pool of this process alone, in memory, when absent.
   */
  nonces?: NoncePool;
}

/** Turns anything thrown into an ACME problem (errors.ts maps it); a 500 never carries internal detail. */
function toAcmeError(err: unknown, logger: Logger): AcmeError {
  if (err instanceof AcmeError) return err;
  const refusal = acmeErrorFor(err);
  if (refusal === null) {
    logger.error('acme_internal_error', {
      error: (err as Error)?.message ?? String(err),
      stack: (err as Error)?.stack,
    });
    return new AcmeError('serverInternal', 'an internal error occurred; it has been logged');
  }
  // The one domain failure sent as serverInternal is the CA's storage being down (a 503): the
  // client retries, the operator reads why.
  if (refusal.type === 'serverInternal') logger.error('acme_storage_unavailable', { error: (err as Error).message });
  return refusal;
}

/**
 * The RFC 8555 front door as a Hono app, for every ACME provisioner at `/acme/{provisioner}/…`:
 * directory, nonces, accounts (with External Account Binding and key change), orders with their
 * authorizations and challenges, finalize, certificate download, revokeCert, and ACME Renewal
 * Information (RFC 9773). Issuance and revocation go through the authority, like every front door.
 */
export function createAcmeApp(opts: AcmeAppOptions): { app: Hono<AcmeEnv>; close(): Promise<void> } {
  const telemetry = opts.telemetry ?? NO_ACME_TELEMETRY;
  const validations = createValidationRunner({
    store: opts.store,
    validate: opts.validate,
    clock: opts.clock,
    logger: opts.logger,
    authorizationLifetimeMs: opts.authorizationLifetimeMs,
    telemetry,
    ...(opts.validationLimits === undefined ? {} : { limits: opts.validationLimits }),
  });
  const services: AcmeServices = { ...opts, validations, telemetry };
  const nonces = opts.nonces ?? createNoncePool({ random: opts.random, now: () => opts.clock.now().getTime() });
  const keyFor = createKeyCache();
  const signed = (mode: KeyMode) =>
    signedRequest(mode, {
      services,
      nonces,
      maxBodyBytes: opts.maxBodyBytes,
      ...(opts.maxJsonDepth === undefined ? {} : { maxJsonDepth: opts.maxJsonDepth }),
      keyFor,
      ...(opts.readBody === undefined ? {} : { readBody: opts.readBody }),
    });
  const handle = (fn: (c: Context<AcmeEnv>, s: AcmeServices) => Promise<Response>) => (c: Context<AcmeEnv>) =>
    fn(c, services);

  const app = new Hono<AcmeEnv>();
  app.onError((err, c) => {
    const e = toAcmeError(err, opts.logger);
    return c.json(e.toProblem(), e.status as 400, { ...e.headers, 'Content-Type': 'application/problem+json' });
  });
  app.notFound(() => {
    throw new AcmeError('notFound', 'there is no ACME resource at this URL; start from the directory');
  });

  const p = '/acme/:provisioner';
  app.use(`${p}/*`, responseHeaders(nonces));
  app.use(`${p}/*`, provisionerContext(services));

  app.get(`${p}/directory`, (c) => {
    const urls = c.get('urls');
    const { options } = c.get('provisioner');
    c.header('Cache-Control', 'public, max-age=0, no-cache');
    return c.json({
      newNonce: urls.newNonce,
      newAccount: urls.newAccount,
      newOrder: urls.newOrder,
      revokeCert: urls.revokeCert,
      keyChange: urls.keyChange,
      renewalInfo: urls.renewalInfo,
      meta: {
        externalAccountRequired: options.requireEab,
        ...(options.termsOfService === null ? {} : { termsOfService: options.termsOfService }),
      },
    });
  });
  // RFC 8555 §7.2: HEAD answers 200, GET 204; neither is cached. The explicit zero length keeps
  // the connection open: without it Node's client cannot tell where a HEAD reply ends and closes
  // the socket, so every nonce would cost the client a new TLS handshake.
  app.on(['GET', 'HEAD'], `${p}/new-nonce`, (c) =>
    c.req.method === 'HEAD' ? c.body(null, 200, { 'Content-Length': '0' }) : c.body(null, 204),
  );
  app.get(`${p}/renewal-info/:certid`, handle(renewalInfo));

  app.post(`${p}/new-account`, signed('jwk'), handle(newAccount));
  app.post(`${p}/account/:id`, signed('kid'), handle(updateAccount));
  app.post(`${p}/account/:id/orders`, signed('kid'), handle(listOrders));
  app.post(`${p}/key-change`, signed('kid'), handle(keyChange));
  app.post(`${p}/new-order`, signed('kid'), handle(newOrder));
  app.post(`${p}/order/:id`, signed('kid'), handle(getOrder));
  app.post(`${p}/order/:id/finalize`, signed('kid'), handle(finalize));
  app.post(`${p}/authz/:id`, signed('kid'), handle(authorization));
  app.post(`${p}/chall/:id`, signed('kid'), handle(challenge));
  app.post(`${p}/cert/:serial`, signed('kid'), handle(certificate));
  app.post(`${p}/revoke-cert`, signed('either'), handle(revokeCert));

  // RFC 8555 §6.3: resources other than the directory and newNonce are read with POST-as-GET.
  app.get(`${p}/*`, () => {
    throw new AcmeError('malformed', 'ACME resources are read with POST-as-GET (RFC 8555 §6.3), not GET', {
      status: 405,
      headers: { Allow: 'POST' },
    });
  });
  // Last, and a route rather than only `notFound`: an app mounted with `app.route()` brings its
  // routes and its onError but not its notFound, and every URL under /acme/ is ACME's to refuse.
  app.all('/acme/:rest{.*}', () => {
    throw new AcmeError('notFound', 'there is no ACME resource at this URL; start from the directory');
  });

  return { app, close: () => validations.drain() };
}
