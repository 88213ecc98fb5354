import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';

/**
 * Answers `Expect: 100-continue` (RFC 9110 §10.1.1) only for a body some route could accept. Node
 * sends `100 Continue` to every such request by default, so a client announcing a 10 MB body
 * starts sending it, the route refuses it with 413 and closes, and the client's upload ends in a
 * broken pipe instead of the problem document. Past `maxBytes` the request goes to its route
 * without the 100: the route refuses it on its Content-Length, and the client never sends the body.
 */
export function continueOnlyWithin(server: Server | HttpsServer, maxBytes: number): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const declared = Number(req.headers['content-length'] ?? Number.NaN);
    if (!(declared > maxBytes)) res.writeContinue();
    server.emit('request', req, res);
  });
}
