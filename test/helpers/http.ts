import assert from 'node:assert/strict';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { run } from './cli.js';

export interface HttpResult {
  status: number;
  contentType: string;
  body: Buffer;
  text: string;
  json<T = Record<string, unknown>>(): T;
  /** Response headers, lower-case names (set by `request` and `curlWithHeaders`). */
  headers?: Record<string, string>;
}

const MARK = '@@shortleaf-e2e@@';

function result(status: number, contentType: string, body: Buffer, headers?: Record<string, string>): HttpResult {
  const text = body.toString('utf8');
  return {
    ...(headers === undefined ? {} : { headers }),
    status,
    contentType,
    body,
    text,
    json: <T>() => {
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new Error(`expected JSON, got HTTP ${status} ${contentType}: ${text.slice(0, 300)}`);
      }
    },
  };
}

/**
 * Runs curl with the given arguments (URL included) and returns the HTTP status, content type
 * and body. curl itself failing (TLS, connection) fails the test with its message.
 */
export async function curl(args: readonly string[], opts: { timeoutMs?: number } = {}): Promise<HttpResult> {
  const r = await run(
    'curl',
    ['-sS', '--max-time', '20', '-w', `%{stderr}${MARK} %{http_code} %{content_type}\n`, ...args],
    { timeoutMs: opts.timeoutMs ?? 30_000 },
  );
  const at = r.stderr.lastIndexOf(MARK);
  if (r.code !== 0 || at < 0) throw new Error(`curl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  const [status = '0', contentType = ''] = r.stderr
    .slice(at + MARK.length)
    .trim()
    .split(' ');
  return result(Number(status), contentType, r.stdoutBytes);
}

/**
 * Like `curl`, and also returns the response headers (lower-case names, repeated values joined
 * with ", "), from curl's own `%{header_json}`.
 */
export async function curlWithHeaders(
  args: readonly string[],
  opts: { timeoutMs?: number } = {},
): Promise<HttpResult & { headers: Record<string, string> }> {
  const r = await run(
    'curl',
    ['-sS', '--max-time', '20', '-w', `%{stderr}${MARK} %{http_code} %{content_type}\n%{header_json}`, ...args],
    { timeoutMs: opts.timeoutMs ?? 30_000 },
  );
  const at = r.stderr.lastIndexOf(MARK);
  if (r.code !== 0 || at < 0) throw new Error(`curl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  const tail = r.stderr.slice(at + MARK.length);
  const nl = tail.indexOf('\n');
  const [status = '0', contentType = ''] = tail.slice(0, nl).trim().split(' ');
  const raw = JSON.parse(tail.slice(nl + 1)) as Record<string, string[]>;
  const headers = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k.toLowerCase(), v.join(', ')]));
  return { ...result(Number(status), contentType, r.stdoutBytes, headers), headers };
}

/** Runs curl expecting it to fail before any HTTP response (TLS refused, say); returns its exit code and message. */
export async function curlFailure(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  const r = await run('curl', ['-sS', '--max-time', '20', ...args]);
  return { code: r.code, stderr: r.stderr };
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string | number>;
  body?: string | Buffer;
  /** Send the body in chunks with no content-length, to exercise streaming limits. */
  chunked?: boolean;
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
  timeoutMs?: number;
  /** A new connection with no TLS session reuse (no keep-alive agent, no session cache). */
  freshConnection?: boolean;
}

/** One HTTP(S) request with node's own client; for bodies and headers curl makes awkward. */
export function request(url: string, opts: RequestOptions = {}): Promise<HttpResult> {
  const u = new URL(url);
  const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
  const body = opts.body === undefined ? undefined : Buffer.from(opts.body);
  const headers: Record<string, string | number> = { ...(opts.headers ?? {}) };
  if (body !== undefined && !opts.chunked) headers['content-length'] = body.length;
  return new Promise((resolve, reject) => {
    const req = send(
      u,
      {
        method: opts.method ?? 'GET',
        headers,
        timeout: opts.timeoutMs ?? 15_000,
        ...(opts.freshConnection ? { agent: false } : {}),
        ...(u.protocol === 'https:'
          ? {
              ca: opts.ca,
              ...(opts.cert ? { cert: opts.cert, key: opts.key } : {}),
              ...(opts.servername ? { servername: opts.servername } : {}),
            }
          : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        const headers = Object.fromEntries(
          Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]),
        );
        res.on('end', () =>
          resolve(
            result(res.statusCode ?? 0, String(res.headers['content-type'] ?? ''), Buffer.concat(chunks), headers),
          ),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${u.origin} within ${opts.timeoutMs ?? 15_000} ms`)));
    req.on('error', reject);
    if (body !== undefined && opts.chunked) {
      for (let i = 0; i < body.length; i += 16 * 1024) req.write(body.subarray(i, i + 16 * 1024));
      req.end();
    } else {
      req.end(body);
    }
  });
}

/**
 * Asserts an RFC 7807 problem document with this status and `urn:shortleaf:problem:` type,
 * and a detail a person can read. Returns the document.
 */
export function assertProblem(
  res: HttpResult,
  status: number,
  type: string,
): { type: string; title: string; status: number; detail: string } {
  const where = `HTTP ${res.status} ${res.contentType}: ${res.text.slice(0, 500)}`;
  assert.equal(res.status, status, `status: ${where}`);
  assert.match(res.contentType, /^application\/problem\+json\b/, `content type: ${where}`);
  const p = res.json<{ type: string; title: string; status: number; detail: string }>();
  assert.equal(p.type, `urn:shortleaf:problem:${type}`, `problem type: ${where}`);
  assert.equal(p.status, status, `problem status field: ${where}`);
  assert.equal(typeof p.title, 'string');
  assert.ok(typeof p.detail === 'string' && p.detail.length >= 10, `a readable detail: ${where}`);
  return p;
}
