import { Buffer } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { NO_TELEMETRY, type OcspAnswer, type Telemetry } from '@shortleaf/authority';
import { MAX_OCSP_REQUEST_BYTES, ocspErrorResponse } from '@shortleaf/pki';
import { isNotModified, secondsUntil } from './http-cache.js';
import { statusProblem } from './problems.js';

export interface OcspHttpOptions {
  ocsp(request: Uint8Array): Promise<OcspAnswer>;
  /** A synchronous cache lookup for requests seen before; null sends the request to `ocsp`. */
  lookup?(request: Uint8Array): OcspAnswer | null;
  now(): Date;
  /**
   * Longest an HTTP cache may serve a GET answer without asking again (seconds; 0: revalidate
   * every time). Never past the answer's nextUpdate. Absent, the answer's nextUpdate alone bounds it.
   */
  maxAgeSeconds?: number;
  onError(event: string, fields: Record<string, unknown>): void;
  /** Counts every OCSP response sent, by status and cache hit; nothing is recorded when absent. */
  telemetry?: Pick<Telemetry, 'ocspAnswered'>;
}

const PREFIX = '/ocsp/';
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const MAX_GET_BASE64 = Math.ceil(MAX_OCSP_REQUEST_BYTES / 3) * 4;

function problem(res: ServerResponse, code: 'bodyTooLarge' | 'unsupportedMediaType', detail: string): void {
  const { status, body } = statusProblem(code, detail);
  // The rest of a refused body is never read: close the connection rather than leave it paused.
  res.writeHead(status, { 'content-type': 'application/problem+json', connection: 'close' });
  res.end(body);
}

function ocspBody(res: ServerResponse, body: Uint8Array, extra?: Record<string, string>): void {
  res.writeHead(200, { 'content-type': 'application/ocsp-response', 'content-length': body.length, ...extra });
  res.end(body);
}

// HTTP dates of a signed response, formatted once per response rather than once per request.
const dates = new WeakMap<Uint8Array, { lastModified: string; nextUpdate: string }>();

function readBody(req: IncomingMessage, limit: number): Promise<Uint8Array | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(size > limit ? null : new Uint8Array(Buffer.concat(chunks))));
    req.on('error', reject);
  });
}

/**
 * The OCSP endpoints (RFC 6960 POST, RFC 5019 GET) on plain node:http. They are the status
 * listener's hot path, and for a pre-signed answer building a web-standard Request for the
 * framework costs several times the lookup itself, so they bypass Hono. Returns false for any
 * other path, which the caller hands on to the status app.
 */
export function createOcspHttpHandler(opts: OcspHttpOptions) {
  const telemetry = opts.telemetry ?? NO_TELEMETRY;
  const maxAge = opts.maxAgeSeconds ?? Number.POSITIVE_INFINITY;
  // `Expires` one max-age from now, formatted once a second: every answer sent in that second shares it.
  let expires = { second: -1, text: '' };
  const expiresAfterMaxAge = (now: Date): string => {
    const second = Math.floor(now.getTime() / 1000);
    if (expires.second !== second) expires = { second, text: new Date((second + maxAge) * 1000).toUTCString() };
    return expires.text;
  };
  const malformed = () => {
    telemetry.ocspAnswered('malformedRequest', false);
    return ocspErrorResponse('malformedRequest');
  };

  async function get(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    let b64: string;
    try {
      // RFC 5019 §5 asks for URL-encoded base64; raw '+', '/' and '=' are accepted too.
      b64 = path.includes('%') ? decodeURIComponent(path) : path;
    } catch {
      return ocspBody(res, malformed());
    }
    if (b64.length === 0 || b64.length > MAX_GET_BASE64 || !BASE64.test(b64)) return ocspBody(res, malformed());
    const der = new Uint8Array(Buffer.from(b64, 'base64'));
    const answer = opts.lookup?.(der) ?? (await opts.ocsp(der));
    telemetry.ocspAnswered(answer.outcome, answer.hit);
    if (answer.cache === null) return ocspBody(res, answer.body);
    const { thisUpdate, nextUpdate, etag } = answer.cache;
    let d = dates.get(answer.body);
    if (d === undefined)
      dates.set(answer.body, (d = { lastModified: thisUpdate.toUTCString(), nextUpdate: nextUpdate.toUTCString() }));
    // RFC 5019 §6.2 with a configurable bound: a cache in between may serve this answer for
    // `ttl` seconds without asking us, so a revocation reaches its clients at most `ttl` late. At
    // 0 it must revalidate every time (If-None-Match: a 304 while unchanged, the new answer once
    // revoked). Expires says the same for HTTP/1.0 caches; HTTP/1.1 ones read max-age (RFC 9111 §5.3).
    const now = opts.now();
    const ttl = secondsUntil(nextUpdate, now, maxAge);
    const headers = {
      etag,
      'last-modified': d.lastModified,
      expires: ttl < maxAge ? d.nextUpdate : expiresAfterMaxAge(now),
      'cache-control': `max-age=${ttl}, public, no-transform, must-revalidate`,
    };
    if (isNotModified(req.headers['if-none-match'], req.headers['if-modified-since'], etag, thisUpdate)) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    ocspBody(res, answer.body, headers);
  }

  async function post(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if ((req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase() !== 'application/ocsp-request') {
      return problem(res, 'unsupportedMediaType', 'send the OCSP request as application/ocsp-request');
    }
    const tooLarge = () => problem(res, 'bodyTooLarge', `an OCSP request is at most ${MAX_OCSP_REQUEST_BYTES} bytes`);
    if (Number(req.headers['content-length'] ?? 0) > MAX_OCSP_REQUEST_BYTES) return tooLarge();
    const body = await readBody(req, MAX_OCSP_REQUEST_BYTES);
    if (body === null) return tooLarge();
    const answer = opts.lookup?.(body) ?? (await opts.ocsp(body));
    telemetry.ocspAnswered(answer.outcome, answer.hit);
    ocspBody(res, answer.body);
  }

  return function handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? '';
    let work: Promise<void>;
    if (req.method === 'GET' && url.startsWith(PREFIX)) work = get(req, res, url.slice(PREFIX.length).split('?')[0]!);
    else if (req.method === 'POST' && (url === '/ocsp' || url.startsWith('/ocsp?'))) work = post(req, res);
    else return false;
    work.catch((err: Error) => {
      opts.onError('ocsp_request_failed', { error: err.message });
      if (res.headersSent) return void res.destroy();
      telemetry.ocspAnswered('internalError', false);
      ocspBody(res, ocspErrorResponse('internalError'));
    });
    return true;
  };
}
