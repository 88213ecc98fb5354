import type { RequestListener } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import type { Hono } from 'hono';
import type { Logger } from '@shortleaf/authority';
import { withRequestIds } from '../request-context.js';
import type { NodeEnv } from './node-env.js';

/**
 * Request listeners for both listeners, made before the apps exist: `serve` binds first (a port
 * of 0 picks a free one) and only then derives the URLs that leaves embed and builds the apps.
 * Requests that arrive meanwhile wait for `open` rather than fail: a proxy told "500" by the OCSP
 * responder would refuse good clients.
 */
export function pendingListeners(logger: Logger) {
  let root: Hono<NodeEnv> | undefined;
  let status: RequestListener | undefined;
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  return {
    /** HTTPS: every request gets an id (`X-Request-Id`, log lines), then the root app. */
    https: withRequestIds(
      logger,
      getRequestListener(async (req, env) => {
        await ready;
        return root!.fetch(req, env);
      }),
    ),
    /** Plain HTTP: no request ids (OCSP logs nothing per response, and its hot path stays bare). */
    http: ((req, res) => {
      if (status !== undefined) status(req, res);
      else void ready.then(() => status!(req, res));
    }) satisfies RequestListener,
    /** Starts answering with these apps; waiting requests go through. */
    open(apps: { root: Hono<NodeEnv>; status: RequestListener }): void {
      root = apps.root;
      status = apps.status;
      markReady();
    },
  };
}
