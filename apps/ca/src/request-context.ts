import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@shortleaf/authority';

/** What a log line written while handling a request can learn about it. */
export interface RequestContext {
  requestId: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

/** An incoming id we pass on: short, and nothing that could break a log line or a header. */
const SANE_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** Longer paths are cut in the log: a request line is the client's to make as long as it likes. */
const MAX_LOGGED_PATH = 256;

/**
 * The id for a request: the client's (or its proxy's) `X-Request-Id` when it is a sane one, so a
 * trace spans both, otherwise a fresh UUID. Anything else in the header is ignored, not refused.
 */
export function requestIdFor(header: string | string[] | undefined): string {
  return typeof header === 'string' && SANE_ID.test(header) ? header : randomUUID();
}

/** The id of the request being handled, or undefined outside one (start-up, timers of their own). */
export function currentRequestId(): string | undefined {
  return storage.getStore()?.requestId;
}

/** Runs `fn` as the handling of a request with this id: log lines written meanwhile carry it. */
export function runWithRequestId<T>(requestId: string, fn: () => T): T {
  return storage.run({ requestId }, fn);
}

/**
 * Wraps a node:http(s) request listener so every request gets an id: sent back in `X-Request-Id`,
 * carried by every log line written while handling it (domain code never passes it along), and
 * logged once in an `http_request` line with method, path (no query), status and duration when
 * the response is done. Work a request schedules (a CRL rebuild, a challenge validation) keeps its id.
 */
export function withRequestIds(
  logger: Logger,
  listener: (req: IncomingMessage, res: ServerResponse) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const requestId = requestIdFor(req.headers['x-request-id']);
    res.setHeader('X-Request-Id', requestId);
    const started = performance.now();
    // 'close' comes for every response, finished or cut short.
    res.once('close', () => {
      const url = req.url ?? '';
      const q = url.indexOf('?');
      const path = (q < 0 ? url : url.slice(0, q)).slice(0, MAX_LOGGED_PATH);
      const fields = {
        method: req.method,
        path,
        status: res.statusCode,
        ms: Math.round(performance.now() - started),
        ...(res.writableFinished ? {} : { aborted: true }),
      };
      runWithRequestId(requestId, () => logger.info('http_request', fields));
    });
    runWithRequestId(requestId, () => listener(req, res));
  };
}
