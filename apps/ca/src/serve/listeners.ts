import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { continueOnlyWithin } from './expect-continue.js';
import { boundFirstRequest } from './first-request.js';
import { TLS_OPTIONS } from './tls.js';

/**
 * How often Node looks for connections past limits.headersTimeout / requestTimeout. Its default
 * (30 s) would let a slow client hold a connection that long past a 10 s headersTimeout.
 */
const CONNECTION_CHECK_MS = 1_000;

/** The two listeners: HTTPS for the front doors, plain HTTP for public revocation data. */
export interface Listeners {
  https: HttpsServer;
  http: Server;
}

/** `limits.*` of the configuration, in milliseconds. */
export interface ListenerLimits {
  headersTimeout: number;
  requestTimeout: number;
  handshakeTimeout: number;
  /** The largest request body any route accepts (`limits.maxBodyBytes`). */
  maxBodyBytes: number;
}

/**
 * Makes both listeners, not yet bound, with the slow-client limits: a slowloris sending headers
 * byte by byte, a client that never finishes its body, one that connects and never sends a
 * ClientHello, one that finishes its handshake and sends nothing are all cut off. The HTTPS
 * listener asks for a client certificate (mTLS renewal) without requiring one; its own
 * certificate is set once the authority can issue it (`setSecureContext`).
 */
export function createListeners(opts: {
  limits: ListenerLimits;
  https: RequestListener;
  http: RequestListener;
}): Listeners {
  const https = createHttpsServer(
    {
      requestCert: true,
      rejectUnauthorized: false,
      ...TLS_OPTIONS,
      connectionsCheckingInterval: CONNECTION_CHECK_MS,
      // Counted from the TCP connection, so a client that connects and never sends a ClientHello is
      // cut off too; Node's default would hold it 120 s (headersTimeout only starts after TLS).
      handshakeTimeout: opts.limits.handshakeTimeout,
    },
    opts.https,
  );
  const http = createHttpServer({ connectionsCheckingInterval: CONNECTION_CHECK_MS }, opts.http);
  https.headersTimeout = http.headersTimeout = opts.limits.headersTimeout;
  https.requestTimeout = http.requestTimeout = opts.limits.requestTimeout;
  boundFirstRequest(https, 'secureConnection', opts.limits.headersTimeout);
  boundFirstRequest(http, 'connection', opts.limits.headersTimeout);
  continueOnlyWithin(https, opts.limits.maxBodyBytes);
  continueOnlyWithin(http, opts.limits.maxBodyBytes);
  return { https, http };
}

/** Binds a listener; resolves with the port it got (a port of 0 picks a free one). */
export function listen(server: Server | HttpsServer, hostPort: { host: string; port: number }): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(hostPort.port, hostPort.host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Stops accepting, lets requests in flight finish, and after `graceMs` ends the connections that
 * never do (a client still sending a refused body).
 */
export async function closeListeners(listeners: Listeners, graceMs: number): Promise<void> {
  // Referenced on purpose: it is what ends connections that never finish, so the process must
  // live until it fires.
  const force = setTimeout(() => dropConnections(listeners), graceMs);
  const close = (server: Server | HttpsServer) =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  await Promise.all([close(listeners.https), close(listeners.http)]);
  clearTimeout(force);
}

/** Ends every connection at once: a start-up failure after binding leaves nothing open. */
export function dropConnections(listeners: Listeners): void {
  listeners.https.closeAllConnections();
  listeners.http.closeAllConnections();
}
