import type { Hono } from 'hono';
import { createAcmeApp, createValidator, type AcmeStore, type NoncePool } from '@shortleaf/acme';
import { createApiApp } from '@shortleaf/api';
import type { Authority, Clock, KeySealer, Logger } from '@shortleaf/authority';
import type { ServeConfig } from '../config.js';
import type { Metrics } from '../metrics.js';
import type { RevocationServices } from '../revocation-services.js';
import { audiences } from './names.js';
import { clientCertificate, readNodeBody, requester, type NodeEnv } from './node-env.js';
import { createRootApp } from './root-app.js';

export interface FrontDoorDeps {
  config: Pick<ServeConfig, 'publicUrl' | 'limits' | 'acme'>;
  store: Parameters<typeof createAcmeApp>[0]['certificates'] & { acme: AcmeStore };
  sealer: KeySealer;
  authority: Authority;
  revocation: RevocationServices;
  /** Names this server answers to and the HTTPS port it got: token audiences derive from them. */
  names: string[];
  apiPort: number;
  clock: Clock;
  random(n: number): Uint8Array;
  logger: Logger;
  metrics: Metrics | undefined;
  /** ACME nonces shared with other instances (serve/acme-nonces.ts); the ACME app's own pool when absent. */
  nonces?: NoncePool | undefined;
}

/**
 * The front doors of the HTTPS listener, REST and ACME, built on the one authority, clock and
 * revoker, and mounted in the root app. `close` waits for ACME validations already started to
 * record their outcome (before the database closes).
 */
export function createFrontDoors(deps: FrontDoorDeps): { root: Hono<NodeEnv>; close(): Promise<void> } {
  const { config, authority, revocation, logger, metrics } = deps;
  const { limits } = config;
  const api = createApiApp({
    authority,
    signAudiences: audiences(config.publicUrl, deps.names, deps.apiPort, '/api/v1/sign'),
    revokeAudiences: audiences(config.publicUrl, deps.names, deps.apiPort, '/api/v1/revoke'),
    revoke: revocation.revoke,
    warnings: revocation.warnings,
    getProvisioner: (name) => deps.store.getProvisioner(name),
    clientCertificate,
    requester,
    roots: revocation.roots,
    intermediates: revocation.intermediates,
    logger,
    maxBodyBytes: limits.maxBodyBytes,
    maxJsonDepth: limits.maxJsonDepth,
  });
  const validation = config.acme.validation;
  const acme = createAcmeApp({
    store: deps.store.acme,
    certificates: deps.store,
    authority,
    revoke: revocation.revoke,
    sealer: deps.sealer,
    validate: createValidator({
      ...validation,
      timeoutMs: validation.timeout,
      denyNetworks: validation.denyNetworks,
      allowNetworks: validation.allowNetworks,
    }),
    clock: deps.clock,
    random: deps.random,
    logger,
    maxBodyBytes: limits.maxBodyBytes,
    maxJsonDepth: limits.maxJsonDepth,
    maxNames: limits.maxNames,
    validationLimits: {
      concurrency: validation.concurrency,
      concurrencyPerAccount: validation.concurrencyPerAccount,
      maxPendingPerAccount: validation.maxPendingPerAccount,
      maxPendingPerProvisioner: validation.maxPendingPerProvisioner,
    },
    orderLifetimeMs: config.acme.orderLifetime,
    authorizationLifetimeMs: config.acme.authorizationLifetime,
    readBody: readNodeBody,
    ...(deps.nonces === undefined ? {} : { nonces: deps.nonces }),
    ...(metrics === undefined ? {} : { telemetry: metrics.acme }),
  });
  return { root: createRootApp({ acme: acme.app, api }), close: () => acme.close() };
}
