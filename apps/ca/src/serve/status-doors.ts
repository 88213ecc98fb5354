import type { RequestListener } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import type { Clock, Logger } from '@shortleaf/authority';
import { createOcspHttpHandler, createStatusApp } from '@shortleaf/status';
import type { ServeConfig } from '../config.js';
import type { Metrics } from '../metrics.js';
import type { RevocationServices } from '../revocation-services.js';
import { createStatusRootApp } from './root-app.js';

/**
 * What the plain-HTTP status listener answers, in order: OCSP on bare node:http (its hot path),
 * then `/metrics` when enabled, then the status app (CRLs, certificates, health).
 */
export function createStatusDoors(opts: {
  config: Pick<ServeConfig, 'crl' | 'ocsp'>;
  revocation: RevocationServices;
  clock: Clock;
  logger: Logger;
  metrics: Metrics | undefined;
}): RequestListener {
  const { revocation, logger, metrics } = opts;
  const now = () => opts.clock.now();
  const onError = (event: string, fields: Record<string, unknown>) => logger.error(event, fields);
  const app = createStatusRootApp(
    createStatusApp({
      issuers: revocation.published,
      roots: revocation.roots,
      rootCrl: revocation.rootCrl,
      rootCrlOf: revocation.rootCrlOf,
      crlMaxAgeSeconds: opts.config.crl.cacheMaxAge / 1000,
      now,
      onError,
    }),
  );
  const ocsp = createOcspHttpHandler({
    ocsp: (request) => revocation.ocsp.respond(request),
    lookup: (request) => revocation.ocsp.lookup(request),
    now,
    maxAgeSeconds: opts.config.ocsp.httpMaxAge / 1000,
    onError,
    ...(metrics === undefined ? {} : { telemetry: metrics.authority }),
  });
  const statusApp = getRequestListener((req, env) => app.fetch(req, env));
  return (req, res) => {
    if (!ocsp(req, res) && metrics?.handle(req, res) !== true) void statusApp(req, res);
  };
}
