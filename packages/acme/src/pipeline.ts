import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { every } from 'hono/combine';
import type { JWK } from 'jose';
import type { AcmeEnv, AcmeServices } from './context.js';
import { AcmeError } from './errors.js';
import { checkHeader, keyFitsAlgorithm, parseJws, verifyJws, type JwsAlgorithm, type VerifyKey } from './jws.js';
import type { NoncePool } from './nonces.js';
import { parseAcmeOptions, type AcmeOptions } from './options.js';
import { acmeUrls } from './resources.js';

type Middleware = MiddlewareHandler<AcmeEnv>;

/**
 * Reads a request body of at most `maxBytes`, rejecting past that. The host may supply one that
 * reads its server's native request directly (cheaper than a web stream); the default reads
 * through the Fetch API.
 */
export type BodyReader = (c: Context, maxBytes: number) => Promise<Uint8Array>;
export type KeyMode = 'jwk' | 'kid' | 'either';

/** Deepest JSON nesting a payload may have unless configured (`limits.maxJsonDepth`); ACME payloads are shallow. */
export const MAX_JSON_DEPTH = 8;

function tooDeep(value: unknown, max: number, level = 0): boolean {
  if (level > max) return true;
  if (value === null || typeof value !== 'object') return false;
  return Object.values(value).some((v) => tooDeep(v, max, level + 1));
}

/**
 * RFC 8555 §6.5 and §7.1: every response, error or not, carries a fresh `Replay-Nonce` and a
 * link to the directory, and nothing is cached unless a handler says so.
 */
export function responseHeaders(nonces: NoncePool): Middleware {
  return async (c, next) => {
    await next();
    c.res.headers.set('Replay-Nonce', nonces.issue());
    const urls = c.get('urls');
    if (urls !== undefined) c.res.headers.append('Link', `<${urls.directory}>;rel="index"`);
    if (!c.res.headers.has('Cache-Control')) c.res.headers.set('Cache-Control', 'no-store');
  };
}

/** Finds the ACME provisioner named in the path and the URLs its resources live at. */
export function provisionerContext(services: Pick<AcmeServices, 'certificates'>): Middleware {
  const parsed = new Map<string, { text: string; options: AcmeOptions }>();
  return async (c, next) => {
    const name = c.req.param('provisioner') ?? '';
    const origin = new URL(c.req.url).origin;
    const row = await services.certificates.getProvisioner(name);
    if (row === null || row.type !== 'acme')
      throw new AcmeError('notFound', `there is no ACME provisioner named ${JSON.stringify(name)}`);
    c.set('urls', acmeUrls(origin, name));
    const text = row.options ?? '{}';
    let cached = parsed.get(name);
    if (cached === undefined || cached.text !== text) {
      cached = { text, options: parseAcmeOptions(JSON.parse(text)) };
      parsed.set(name, cached);
    }
    c.set('provisioner', { name, options: cached.options });
    await next();
  };
}

/**
 * The request pipeline for signed POSTs, in RFC 8555 order: content type (§6.2), parse the JWS,
 * spend the nonce (§6.5), check the protected header (§6.2, §6.4: alg, url, jwk xor kid), look up
 * the account named by `kid` (§6.2), verify the signature, and parse the payload (§6.3: empty
 * means POST-as-GET). Each step leaves its result on the context.
 */
export function signedRequest(
  keyMode: KeyMode,
  deps: {
    services: AcmeServices;
    nonces: NoncePool;
    maxBodyBytes: number;
    maxJsonDepth?: number;
    keyFor: (jwkText: string, alg: JwsAlgorithm) => VerifyKey;
    readBody?: BodyReader;
  },
): Middleware {
  const maxJsonDepth = deps.maxJsonDepth ?? MAX_JSON_DEPTH;
  const contentType: Middleware = async (c, next) => {
    const type = c.req.header('content-type') ?? '';
    if (!/^application\/jose\+json\s*(;|$)/i.test(type))
      throw new AcmeError('unsupportedMediaType', 'ACME requests must be sent as application/jose+json');
    await next();
  };

  // Counted while the body streams in, so an oversized one is refused before it is buffered.
  const limit = bodyLimit({
    maxSize: deps.maxBodyBytes,
    onError: () => {
      throw new AcmeError('malformed', `the request body is larger than ${deps.maxBodyBytes} bytes`);
    },
  }) as Middleware;

  const parse: Middleware = async (c, next) => {
    let body: Uint8Array;
    try {
      body =
        deps.readBody === undefined
          ? new Uint8Array(await c.req.arrayBuffer())
          : await deps.readBody(c, deps.maxBodyBytes);
    } catch (cause) {
      // Over the limit: the host's reader, or bodyLimit's counting stream, throws here.
      throw new AcmeError(
        'malformed',
        `the request body is larger than ${deps.maxBodyBytes} bytes, or could not be read`,
        { cause },
      );
    }
    let value: unknown;
    try {
      value = JSON.parse(Buffer.from(body).toString('utf8'));
    } catch {
      throw new AcmeError('malformed', 'the request body is not valid JSON');
    }
    c.set('jws', parseJws(value));
    await next();
  };

  const nonce: Middleware = async (c, next) => {
    const value = (c.get('jws').header as { nonce?: unknown }).nonce;
    if (typeof value !== 'string' || !(await deps.nonces.consume(value))) {
      throw new AcmeError(
        'badNonce',
        typeof value === 'string'
          ? 'the nonce was already used, has expired, or was not issued here; retry with the Replay-Nonce of this response'
          : 'the protected header must carry a "nonce"',
      );
    }
    await next();
  };

  const header: Middleware = async (c, next) => {
    checkHeader(c.get('jws').header, { requestUrl: c.req.url, keyMode });
    await next();
  };

  const account: Middleware = async (c, next) => {
    const kid = c.get('jws').header.kid;
    if (kid === undefined) {
      c.set('account', null);
      return next();
    }
    const prefix = c.get('urls').account('');
    const id = kid.startsWith(prefix) ? kid.slice(prefix.length) : '';
    const found = id === '' || id.includes('/') ? null : await deps.services.store.getAccount(id);
    if (found === null || found.provisioner !== c.get('provisioner').name)
      throw new AcmeError('accountDoesNotExist', `no account ${kid} exists at this provisioner`);
    // RFC 8555 §7.3.6: 401 unauthorized for a deactivated (or server-revoked) account.
    if (found.status !== 'valid') throw new AcmeError('accountDeactivated', `account ${kid} is ${found.status}`);
    c.set('account', found);
    await next();
  };

  const verify: Middleware = async (c, next) => {
    const jws = c.get('jws');
    const acct = c.get('account');
    const jwkText = acct === null ? JSON.stringify(jws.header.jwk) : acct.jwk;
    // A kid request whose alg the account's key cannot use (an old key after a keyChange to another
    // type, RFC 8555 §7.3.5) fails as any other signature that does not verify with the account's
    // key: `malformed`, as Boulder answers, not `badPublicKey`, which would blame a key the client
    // did not send. The RFC's key-problem types are for the server's algorithm list (§6.2).
    if (acct !== null && !keyFitsAlgorithm(JSON.parse(acct.jwk) as JWK, jws.header.alg)) {
      throw new AcmeError(
        'malformed',
        `the JWS signature does not verify with the key of account ${jws.header.kid ?? ''}: that key cannot sign ${jws.header.alg}; after a keyChange only the new key signs for the account`,
      );
    }
    const payload = verifyJws(jws, deps.keyFor(jwkText, jws.header.alg));
    if (payload.length === 0) {
      c.set('payload', null);
    } else {
      let value: unknown;
      try {
        value = JSON.parse(Buffer.from(payload).toString('utf8'));
      } catch {
        throw new AcmeError('malformed', 'the JWS payload is not valid JSON');
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        throw new AcmeError('malformed', 'the JWS payload must be a JSON object');
      if (tooDeep(value, maxJsonDepth))
        throw new AcmeError(
          'malformed',
          `the JWS payload nests deeper than ${maxJsonDepth} levels (limits.maxJsonDepth)`,
        );
      c.set('payload', value as Record<string, unknown>);
    }
    await next();
  };

  // A host reader enforces the limit itself; bodyLimit would build a Fetch Request just to count.
  const steps =
    deps.readBody === undefined
      ? [contentType, limit, parse, nonce, header, account, verify]
      : [contentType, parse, nonce, header, account, verify];
  return every(...steps) as Middleware;
}

/** The account of a `kid`-signed request; the pipeline guarantees it for `kid` routes. */
export function requireAccount(c: { get(key: 'account'): AcmeEnv['Variables']['account'] }) {
  const account = c.get('account');
  if (account === null)
    throw new AcmeError('malformed', 'this request must be signed by an account key named with "kid"');
  return account;
}
