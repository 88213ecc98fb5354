import { Buffer } from 'node:buffer';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { AcmeError } from '../errors.js';
import { describeTransport, dial, type Hop } from './dial.js';
import { errorCode } from './describe.js';
import type { ChallengeToValidate, ValidationContext } from './types.js';

/** Redirects followed before giving up (Boulder's limit). */
export const MAX_REDIRECTS = 10;
/** Largest response body read; a key authorization is under 100 bytes. */
export const MAX_BODY_BYTES = 8 * 1024;
const USER_AGENT = 'Shortleaf-ACME-validator';
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** One request to make: the URL (for Host and the path), the port to dial, and how to name it to the client. */
interface Target extends Hop {
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
 *
 * What the client reads back in an error never carries what a server sent: not the body, not a
 * header, not where a redirect pointed nor what its host resolved to. Validation reaches
 * networks the client cannot, so an echo would let any ACME client read internal services.
 * Errors say which step failed (the identifier's URL, or "redirect N" of it), the HTTP status
 * and a fixed description; the server log gets the details.
 */
export async function validateHttp01(challenge: ChallengeToValidate, ctx: ValidationContext): Promise<void> {
  const { value } = challenge.identifier;
  const host = isIP(value) === 6 ? `[${value}]` : value;
  const url = new URL(`http://${host}/.well-known/acme-challenge/${challenge.token}`);
  const origin = show(url, ctx.config.httpPort);
  let target: Target = { url, port: ctx.config.httpPort, label: origin, identifier: true };
  for (let redirects = 0; ; redirects++) {
    const answer = await fetchOnce(target, ctx);
    if (REDIRECT_STATUSES.has(answer.status)) {
      if (redirects === MAX_REDIRECTS)
        throw new AcmeError('connection', `${origin} redirected more than ${MAX_REDIRECTS} times`);
      target = redirectTarget(target, answer.location, `redirect ${redirects + 1} from ${origin}`, ctx);
      continue;
    }
    // For the log only: where the redirects led.
    const at = target.identifier
      ? {}
      : { cause: new Error(`the last redirect led to ${show(target.url, target.port)}`) };
    if (answer.status !== 200)
      throw new AcmeError('incorrectResponse', `${target.label} answered HTTP ${answer.status}, not 200`, at);
    if (answer.body.toString('utf8').trim() === challenge.keyAuthorization) return;
    throw new AcmeError(
      'incorrectResponse',
      `the body at ${target.label} is not the key authorization ${JSON.stringify(challenge.keyAuthorization)} (what it holds is never shown)`,
      at,
    );
  }
}

/**
 * Where a redirect leads (RFC 8555 §8.3: http or https only, on the ports validation dials, as
 * Let's Encrypt does), refused otherwise. The address it leads to is checked when it is dialled.
 */
function redirectTarget(from: Target, location: string | undefined, redirect: string, ctx: ValidationContext): Target {
  const refuse = (why: string, detail: string) =>
    new AcmeError('connection', `${redirect} was not followed: ${why}`, {
      cause: new Error(`${show(from.url, from.port)} redirected to ${detail}`),
    });
  if (location === undefined || location === '') throw refuse('the response had no Location header', 'nowhere');
  let url: URL;
  try {
    url = new URL(location, from.url);
  } catch {
    throw refuse('its Location is not a URL', JSON.stringify(location.slice(0, 200)));
  }
  const ports =
    url.protocol === 'http:'
      ? [...new Set([80, ctx.config.httpPort])]
      : url.protocol === 'https:'
        ? [...new Set([443, ctx.config.tlsPort])]
        : null;
  if (ports === null) throw refuse('only http and https URLs are followed', url.href);
  const port =
    url.port === '' ? (url.protocol === 'http:' ? ctx.config.httpPort : ctx.config.tlsPort) : Number(url.port);
  if (!ports.includes(port))
    throw refuse(`only ports ${ports.join(' and ')} are followed for ${url.protocol.slice(0, -1)}`, url.href);
  url.hash = '';
  return { url, port, label: `the URL of ${redirect}`, identifier: false };
}

/** Makes one request over a connection `dial` checked, and reads at most MAX_BODY_BYTES of a non-redirect answer. */
async function fetchOnce(target: Target, ctx: ValidationContext): Promise<Answer> {
  const { socket, address } = await dial(target.url.hostname, target.port, ctx, target);
  const where = target.identifier ? `${target.label} (${address}:${target.port})` : target.label;
  const https = target.url.protocol === 'https:';
  const hostname = target.url.hostname;
  // Like Let's Encrypt, https redirect targets are not authenticated: the body is what counts.
  const stream: Socket = https
    ? tlsConnect({
        socket,
        rejectUnauthorized: false,
        ...(isIP(hostname.replace(/^\[|\]$/g, '')) === 0 ? { servername: hostname } : {}),
      })
    : socket;
  let req: ClientRequest | undefined;
  const answer = new Promise<Answer>((resolve, reject) => {
    const fail = (error: unknown) => reject(error instanceof AcmeError ? error : transportError(error, where));
    req = request(
      {
        createConnection: () => stream,
        path: `${target.url.pathname}${target.url.search}`,
        method: 'GET',
        headers: { host: target.url.host, 'user-agent': USER_AGENT, accept: '*/*', connection: 'close' },
        // No `agent`: with one (even `agent: false`, which makes a fresh Agent) Node ignores
        // createConnection and dials host/port itself, resolving names on its own.
      },
      (res) => readAnswer(res, where).then(resolve, fail),
    );
    req.on('error', fail);
    req.end();
  });
  try {
    return await ctx.deadline.race(
      answer,
      () => new AcmeError('connection', `no complete answer from ${where} within ${ctx.deadline.timeoutMs} ms`),
    );
  } finally {
    req?.destroy();
    stream.destroy();
    socket.destroy();
  }
}

function readAnswer(res: IncomingMessage, where: string): Promise<Answer> {
  const status = res.statusCode ?? 0;
  const location = res.headers.location;
  if (status !== 200) {
    res.resume();
    return Promise.resolve({ status, location, body: Buffer.alloc(0) });
  }
  const declared = Number(res.headers['content-length']);
  if (declared > MAX_BODY_BYTES) return Promise.reject(tooLarge(where));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        res.destroy();
        reject(tooLarge(where));
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve({ status, location, body: Buffer.concat(chunks) }));
    res.on('error', reject);
    res.on('close', () =>
      reject(new AcmeError('connection', `the connection to ${where} closed before the body was complete`)),
    );
  });
}

function tooLarge(where: string): AcmeError {
  return new AcmeError(
    'incorrectResponse',
    `the body at ${where} is larger than ${MAX_BODY_BYTES} bytes; it should hold only the key authorization`,
  );
}

/** A fixed description per kind of failure: Node's messages can quote what the server sent (a bad header, say). */
function transportError(error: unknown, where: string): AcmeError {
  const code = errorCode(error);
  if (code.startsWith('HPE_'))
    return new AcmeError('connection', `${where} sent a malformed HTTP response (${code})`, { cause: error });
  if (code.startsWith('ERR_SSL') || code === 'EPROTO')
    return new AcmeError('tls', `the TLS handshake with ${where} failed (${code})`, { cause: error });
  return new AcmeError('connection', `fetching ${where} failed: ${describeTransport(error)}`, { cause: error });
}

/** The URL with the port actually dialled, for messages. */
function show(url: URL, port: number): string {
  const copy = new URL(url.href);
  copy.port = String(port);
  return copy.href;
}
