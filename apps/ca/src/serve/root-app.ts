import { Hono, type Env } from 'hono';
import type { NodeEnv } from './node-env.js';

/**
 * The HTTPS listener's one app: the front doors mounted with `app.route()`, each keeping its own
 * error handler, so a refusal under /acme/ is an ACME problem (RFC 8555 §6.7) and anywhere else a
 * REST problem (RFC 7807). ACME is mounted first: its routes, and its catch-all for unknown ACME
 * URLs, answer everything under /acme/; the REST API answers the rest, its catch-all included.
 * The console (issue 16) mounts here under /admin/ the same way.
 */
export function createRootApp<A extends Env, B extends Env>(doors: { acme: Hono<A>; api: Hono<B> }): Hono<NodeEnv> {
  const root = new Hono<NodeEnv>();
  root.route('/', doors.acme);
  root.route('/', doors.api);
  return root;
}

/**
 * The status listener's app (plain HTTP, public revocation data): the status app mounted the same
 * way, with its own error handler. OCSP and /metrics are answered before it, on bare node:http.
 */
export function createStatusRootApp<S extends Env>(status: Hono<S>): Hono<NodeEnv> {
  const root = new Hono<NodeEnv>();
  root.route('/', status);
  return root;
}
