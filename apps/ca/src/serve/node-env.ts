import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import { TLSSocket } from 'node:tls';

/**
 * What a request handled by `serve` carries besides the Fetch API request: Node's own request and
 * response (`@hono/node-server` passes them as the app's bindings), so the TLS peer certificate, the
 * peer address and the raw body stream are typed, not cast.
 */
export type NodeEnv = { Bindings: HttpBindings };

/** DER of the certificate the client presented over TLS, or null (none, or plain HTTP). */
export function clientCertificate(c: Context<NodeEnv>): Uint8Array | null {
  const socket = c.env.incoming.socket;
  const peer = socket instanceof TLSSocket ? socket.getPeerCertificate(false) : null;
  return peer !== null && peer.raw !== undefined ? new Uint8Array(peer.raw) : null;
}

/** Who is asking, for the audit log: the peer address. */
export const requester = (c: Context<NodeEnv>): string => c.env.incoming.socket.remoteAddress ?? 'unknown';

/**
 * Reads a request body straight from Node's request, at most `maxBytes`: cheaper than the Fetch
 * API's stream, and every ACME request has a body. Past the limit the rest is discarded unread.
 */
export function readNodeBody(c: Context<NodeEnv>, maxBytes: number): Promise<Uint8Array> {
  const incoming = c.env.incoming;
  return new Promise((resolve, reject) => {
    if (Number(incoming.headers['content-length'] ?? 0) > maxBytes)
      return reject(new RangeError(`the body is larger than ${maxBytes} bytes`));
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
