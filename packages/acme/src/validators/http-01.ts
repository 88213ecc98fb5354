import { Buffer } from 'node:buffer';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { AcmeError } from '../errors.js';
import { errorCode, errorMessage, preview } from './describe.js';
import type { ChallengeToValidate, ValidationContext } from './types.js';

/** Redirects followed before giving up (Boulder's limit). */
export const MAX_REDIRECTS = 10;
/** Largest response body read; a key authorization is under 100 bytes. */
export const MAX_BODY_BYTES = 8 * 1024;
const USER_AGENT = 'Shortleaf-ACME-validator';
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** One request to make: the URL as written (for Host and messages) and the port to dial. */
interface Target {
  url: URL;
  port: number;
}

interface Answer {
  status: number;
  location: string | undefined;
  body: Buffer;
}

/**
 * RFC 8555 §8.3 (RFC 8738 §7 for IP identifiers): GET
 * `http://NAME/.well-known/acme-challenge/TOKEN` on the configured port, following up to 10
 * redirects to http or https on the allowed ports; the final 200 body, trimmed of surrounding
 * whitespace, must be the key authorization exactly.
 */
export async function validateHttp01(challenge: ChallengeToValidate, ctx: ValidationContext): Promise<void> {
  const { value } = challenge.identifier;
  const host = isIP(value) === 6 ? `[${value}]` : value;
  let target: Target = { url: new URL(`http://${host}/.well-known/acme-challenge/${challenge.token}`), port: ctx.config.httpPort };
  for (let redirects = 0; ; redirects++) {
    const answer = await fetchOnce(target, ctx);
    if (REDIRECT_STATUSES.has(answer.status)) {
      if (redirects === MAX_REDIRECTS) throw new AcmeError('connection', `more than ${MAX_REDIRECTS} redirects, the last from ${show(target)}`);
      target = redirectTarget(target, answer.location, ctx);
      continue;
    }
    if (answer.status !== 200) throw new AcmeError('incorrectResponse', `${show(target)} answered HTTP ${answer.status}, not 200`);
    const body = answer.body.toString('utf8').trim();
    if (body === challenge.keyAuthorization) return;
    throw new AcmeError('incorrectResponse', `the body at ${show(target)} is not the key authorization: expected ${JSON.stringify(challenge.keyAuthorization)}, got ${preview(body)}`);
  }
}

/** Where a redirect leads, refused unless it is http or https on a port we would dial anyway. */
function redirectTarget(from: Target, location: string | undefined, ctx: ValidationContext): Target {
  if (location === undefined || location === '') throw new AcmeError('connection', `${show(from)} redirected without a Location header`);
  let url: URL;
  try {
    url = new URL(location, from.url);
  } catch {
    throw new AcmeError('connection', `${show(from)} redirected to an invalid URL ${preview(location)}`);
  }
  const ports = url.protocol === 'http:' ? [...new Set([80, ctx.config.httpPort])] : url.protocol === 'https:' ? [...new Set([443, ctx.config.tlsPort])] : null;
  if (ports === null) throw new AcmeError('connection', `${show(from)} redirected to ${preview(url.href)}: only http and https redirects are followed`);
  const port = url.port === '' ? (url.protocol === 'http:' ? ctx.config.httpPort : ctx.config.tlsPort) : Number(url.port);
  if (!ports.includes(port)) throw new AcmeError('connection', `${show(from)} redirected to ${preview(url.href)}: only ports ${ports.join(' and ')} are allowed for ${url.protocol.slice(0, -1)}`);
  url.hash = '';
  return { url, port };
}

/** Makes one request and reads at most MAX_BODY_BYTES of a non-redirect answer. */
async function fetchOnce(target: Target, ctx: ValidationContext): Promise<Answer> {
  const address = await ctx.lookup.address(target.url.hostname, ctx.deadline);
  const https = target.url.protocol === 'https:';
  const hostname = target.url.hostname;
  const options = {
    host: address,
    port: target.port,
    path: `${target.url.pathname}${target.url.search}`,
    method: 'GET',
    headers: { host: target.url.host, 'user-agent': USER_AGENT, accept: '*/*', connection: 'close' },
    agent: false as const,
    // Like Let's Encrypt, https redirect targets are not authenticated: the body is what counts.
    ...(https ? { rejectUnauthorized: false, ...(isIP(hostname.replace(/^\[|\]$/g, '')) === 0 ? { servername: hostname } : {}) } : {}),
  };
  let req: ClientRequest | undefined;
  const answer = new Promise<Answer>((resolve, reject) => {
    const fail = (error: unknown) => reject(error instanceof AcmeError ? error : transportError(error, target, address));
    req = (https ? httpsRequest : httpRequest)(options, (res) => readAnswer(res, target).then(resolve, fail));
    req.on('error', fail);
    req.end();
  });
  try {
    return await ctx.deadline.race(answer, () => new AcmeError('connection', `no complete answer from ${show(target)} (${address}) within ${ctx.deadline.timeoutMs} ms`));
  } finally {
    req?.destroy();
  }
}

function readAnswer(res: IncomingMessage, target: Target): Promise<Answer> {
  const status = res.statusCode ?? 0;
  const location = res.headers.location;
  if (status !== 200) {
    res.resume();
    return Promise.resolve({ status, location, body: Buffer.alloc(0) });
  }
  const declared = Number(res.headers['content-length']);
  if (declared > MAX_BODY_BYTES) return Promise.reject(tooLarge(target));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        res.destroy();
        reject(tooLarge(target));
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve({ status, location, body: Buffer.concat(chunks) }));
    res.on('error', reject);
    res.on('close', () => reject(new AcmeError('connection', `the connection to ${show(target)} closed before the body was complete`)));
  });
}

function tooLarge(target: Target): AcmeError {
  return new AcmeError('incorrectResponse', `the body at ${show(target)} is larger than ${MAX_BODY_BYTES} bytes; it should hold only the key authorization`);
}

const TRANSPORT_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'the connection was refused',
  ECONNRESET: 'the connection was reset',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
  ETIMEDOUT: 'the connection timed out',
  EPIPE: 'the connection was closed while sending',
};

function transportError(error: unknown, target: Target, address: string): AcmeError {
  const code = errorCode(error);
  const known = TRANSPORT_ERRORS[code];
  const where = `${show(target)} (${address}:${target.port})`;
  if (known !== undefined) return new AcmeError('connection', `fetching ${where} failed: ${known}`, { cause: error });
  if (code.startsWith('HPE_')) return new AcmeError('connection', `${where} sent a malformed HTTP response (${code})`, { cause: error });
  if (code.startsWith('ERR_SSL') || code === 'EPROTO') return new AcmeError('tls', `the TLS handshake with ${where} failed (${code})`, { cause: error });
  return new AcmeError('connection', `fetching ${where} failed: ${preview(errorMessage(error), 200)}`, { cause: error });
}

/** The URL with the port actually dialled, for messages. */
function show(target: Target): string {
  const url = new URL(target.url.href);
  url.port = String(target.port);
  return url.href;
}
