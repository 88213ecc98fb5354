import type { IncomingMessage, Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';

/**
 * Closes a connection whose first request has not arrived `ms` after it was opened (for HTTPS:
 * after its TLS handshake). Node's headersTimeout does not reach a client that connects and then
 * sends nothing, or a byte and then nothing: such a connection would be held for good.
 */
export function boundFirstRequest(
  server: Server | HttpsServer,
  event: 'connection' | 'secureConnection',
  ms: number,
): void {
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
