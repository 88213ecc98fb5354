import { spawn } from 'node:child_process';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { createClient } from '@shortleaf/client';
import { parseDuration } from '@shortleaf/authority';
import { out, parse, UsageError } from '../cli.js';

/** The flags `login` and `certificate --provisioner` share. */
export const LOGIN_FLAGS = {
  provisioner: { type: 'string' },
  'client-secret-file': { type: 'string' },
  open: { type: 'boolean' },
  'login-timeout': { type: 'string' },
} as const;

/** How long an engineer has to finish signing in at the identity provider. */
const DEFAULT_LOGIN_TIMEOUT_MS = 5 * 60 * 1000;
/** One request to the identity provider (discovery, token, keys). */
const IDP_TIMEOUT_MS = 15_000;
// The asymmetric JWS algorithms (RFC 7518 §3.1, RFC 8037): an ID token MACed with the client
// secret (HS256) proves nothing to the CA, which has no secret, so it is refused here already.
const ID_TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/** An ID token, verified as the CA will verify it, held in memory only. */
export interface SignedIn {
  idToken: string;
  claims: JWTPayload;
}

export interface LoginOptions {
  issuer: string;
  clientId: string;
  scopes: readonly string[];
  /** A confidential client's secret; absent for the default public client (PKCE alone). */
  clientSecret?: string;
  /** Where to print the authorization URL for the engineer. */
  tell(text: string): void;
  /** Also hand the URL to the desktop's browser opener. */
  open: boolean;
  timeoutMs: number;
}

const b64url = (bytes: Buffer): string => bytes.toString('base64url');

/** Endpoints the engineer's secrets travel to: https, or http to this machine only (a test IdP). */
function checkEndpoint(raw: unknown, what: string): URL {
  if (typeof raw !== 'string') throw new Error(`the identity provider's discovery document has no ${what}`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`the identity provider's ${what} ${JSON.stringify(raw.slice(0, 200))} is not a URL`);
  }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback))
    throw new Error(`the identity provider's ${what} must be an https:// URL (http:// only to localhost)`);
  return url;
}

async function fetchJson(url: URL, what: string, init: RequestInit = {}): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(IDP_TIMEOUT_MS) });
  } catch (cause) {
    throw new Error(`the identity provider's ${what} at ${url.origin}${url.pathname} cannot be reached`, { cause });
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new Error(`the identity provider's ${what} answered HTTP ${res.status} without a JSON object`);
  const doc = body as Record<string, unknown>;
  if (!res.ok) {
    // RFC 6749 §5.2: `error` is a code, `error_description` text for the developer.
    const reason = [doc.error, doc.error_description].filter((v) => typeof v === 'string').join(': ');
    throw new Error(`the identity provider's ${what} refused: HTTP ${res.status}${reason === '' ? '' : ` ${reason}`}`);
  }
  return doc;
}

interface Discovered {
  authorization: URL;
  token: URL;
  jwks: URL;
}

/** OpenID Connect Discovery 1.0 §4: the provider's endpoints, from the document under its issuer. */
async function discover(issuer: string): Promise<Discovered> {
  const base = checkEndpoint(issuer, 'issuer');
  const where = new URL(`${base.href.replace(/\/$/, '')}/.well-known/openid-configuration`);
  const doc = await fetchJson(where, 'discovery document');
  // §4.3: the document must name the issuer it was fetched for, or it speaks for someone else.
  if (doc.issuer !== issuer) throw new Error(`the discovery document at ${where.href} is not for issuer ${issuer}`);
  const methods = doc.code_challenge_methods_supported;
  if (Array.isArray(methods) && !methods.includes('S256'))
    throw new Error(`the identity provider ${issuer} does not support PKCE with S256 (RFC 7636), which login needs`);
  return {
    authorization: checkEndpoint(doc.authorization_endpoint, 'authorization_endpoint'),
    token: checkEndpoint(doc.token_endpoint, 'token_endpoint'),
    jwks: checkEndpoint(doc.jwks_uri, 'jwks_uri'),
  };
}

const sameSecret = (a: string, b: string): boolean =>
  a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

function reply(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'cache-control': 'no-store',
    // The page's URL holds the code: it must not leak to anything the page might load.
    'referrer-policy': 'no-referrer',
  });
  res.end(`${text}\n`);
}

/**
 * RFC 8252 §7.3: a loopback redirect on 127.0.0.1 (an IP literal, not `localhost`, which a
 * resolver may send elsewhere) on a port the system picks. It waits for the one redirect that
 * carries our `state` (RFC 6749 §10.12: anything else may be a forged request from another page
 * and is answered 400 without ending the wait) and returns its code.
 */
async function receiveCode(
  state: string,
  timeoutMs: number,
  ready: (redirectUri: string) => void,
): Promise<{ code: string; redirectUri: string }> {
  const server = createServer();
  let redirectUri = '';
  try {
    const code = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no sign-in came back from the identity provider within ${timeoutMs / 1000} s`)),
        timeoutMs,
      );
      const settle = (fn: () => void) => {
        clearTimeout(timer);
        fn();
      };
      server.on('request', (req: IncomingMessage, res: ServerResponse) => {
        const url = new URL(req.url ?? '/', 'http://127.0.0.1');
        if (req.method !== 'GET' || url.pathname !== '/callback') return reply(res, 404, 'not found');
        const got = url.searchParams.get('state');
        if (got === null || !sameSecret(got, state))
          return reply(res, 400, 'This sign-in was not started by this shortleaf login; it is ignored.');
        const error = url.searchParams.get('error');
        if (error !== null) {
          // RFC 6749 §4.1.2.1: the provider refused (access_denied…) and says why.
          const detail = url.searchParams.get('error_description');
          reply(res, 400, `Sign-in failed: ${error}. You can close this tab.`);
          return settle(() =>
            reject(new Error(`the identity provider refused the sign-in: ${error}${detail ? `: ${detail}` : ''}`)),
          );
        }
        const code = url.searchParams.get('code');
        if (code === null || code === '') return reply(res, 400, 'The redirect carries no authorization code.');
        reply(res, 200, 'Signed in. You can close this tab and return to the terminal.');
        settle(() => resolve(code));
      });
      server.once('error', (err) => settle(() => reject(err)));
      server.listen(0, '127.0.0.1', () => {
        redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`;
        ready(redirectUri);
      });
    });
    return { code, redirectUri };
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

/** Hands the URL to the desktop's opener (which honours $BROWSER); the printed URL works without it. */
function openBrowser(url: string): void {
  const [command, ...args] =
    process.platform === 'darwin'
      ? ['open', url]
      : process.platform === 'win32'
        ? ['cmd', '/c', 'start', '""', url]
        : ['xdg-open', url];
  const child = spawn(command!, args, { stdio: 'ignore', detached: true });
  child.on('error', () => undefined);
  child.unref();
}

/** RFC 6749 §4.1.3 with RFC 7636 §4.5: the code and its verifier for tokens, at the token endpoint. */
async function redeemCode(
  token: URL,
  input: { code: string; redirectUri: string; verifier: string; clientId: string; clientSecret?: string },
): Promise<string> {
  const form = new URLSearchParams({
    grant_type: 'authorization_code',
    code: input.code,
    redirect_uri: input.redirectUri,
    code_verifier: input.verifier,
  });
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  };
  if (input.clientSecret === undefined) form.set('client_id', input.clientId);
  else {
    // RFC 6749 §2.3.1: client_secret_basic, each part form-encoded first.
    const pair = `${encodeURIComponent(input.clientId)}:${encodeURIComponent(input.clientSecret)}`;
    headers.authorization = `Basic ${Buffer.from(pair).toString('base64')}`;
  }
  const body = await fetchJson(token, 'token endpoint', { method: 'POST', headers, body: form.toString() });
  if (typeof body.id_token !== 'string')
    throw new Error('the identity provider returned no ID token (is "openid" among the scopes?)');
  return body.id_token;
}

/**
 * OpenID Connect Core §3.1.3.7, as the CA will check it and more: signed by a key the issuer
 * publishes with an asymmetric algorithm, our issuer, our client id in `aud` (and in `azp` when
 * there are several audiences), not expired, and our `nonce`, so a token minted for another
 * sign-in cannot be slipped into this one.
 */
async function verifyIdToken(
  idToken: string,
  o: { jwks: URL; issuer: string; clientId: string; nonce: string },
): Promise<JWTPayload> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(idToken, createRemoteJWKSet(o.jwks, { timeoutDuration: IDP_TIMEOUT_MS }), {
      issuer: o.issuer,
      audience: o.clientId,
      algorithms: ID_TOKEN_ALGORITHMS,
      requiredClaims: ['sub', 'iat', 'exp'],
    }));
  } catch (cause) {
    const why = cause instanceof joseErrors.JOSEError ? ` (${cause.code}: ${cause.message})` : '';
    throw new Error(`the identity provider's ID token does not verify${why}`, { cause });
  }
  if (typeof payload.nonce !== 'string' || !sameSecret(payload.nonce, o.nonce))
    throw new Error('the ID token was not minted for this sign-in (its nonce differs)');
  if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload.azp !== o.clientId)
    throw new Error(`the ID token was issued to another party (azp is not ${o.clientId})`);
  return payload;
}

/**
 * Signs an engineer in with the authorization code flow, PKCE (S256) and a loopback redirect
 * (RFC 6749 §4.1, RFC 7636, RFC 8252), and returns the verified ID token. Nothing is written to
 * disk: the token lives as long as this process.
 */
export async function oidcLogin(o: LoginOptions): Promise<SignedIn> {
  const endpoints = await discover(o.issuer);
  // RFC 7636 §4.1: 32 random octets make a 43-character verifier; §4.2: S256, never plain.
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const state = b64url(randomBytes(32));
  const nonce = b64url(randomBytes(32));
  const { code, redirectUri } = await receiveCode(state, o.timeoutMs, (redirect) => {
    const url = new URL(endpoints.authorization);
    for (const [k, v] of Object.entries({
      response_type: 'code',
      client_id: o.clientId,
      redirect_uri: redirect,
      scope: o.scopes.join(' '),
      state,
      nonce,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }))
      url.searchParams.set(k, v);
    o.tell(`Sign in at your identity provider: open this URL in a browser\n\n  ${url.href}\n`);
    if (o.open) openBrowser(url.href);
  });
  const idToken = await redeemCode(endpoints.token, {
    code,
    redirectUri,
    verifier,
    clientId: o.clientId,
    ...(o.clientSecret === undefined ? {} : { clientSecret: o.clientSecret }),
  });
  const claims = await verifyIdToken(idToken, { jwks: endpoints.jwks, issuer: o.issuer, clientId: o.clientId, nonce });
  return { idToken, claims };
}

/**
 * The CA's word on how to sign in for provisioner NAME, then the sign-in itself. The provider,
 * client id and scopes come from the CA (`GET /api/v1/provisioners/NAME`), so an engineer needs
 * only the provisioner's name, and the token is minted for exactly the audience the CA checks.
 */
export async function loginForProvisioner(
  values: { ca?: string; root?: string } & { [K in keyof typeof LOGIN_FLAGS]?: string | boolean },
): Promise<SignedIn> {
  const name = values.provisioner as string;
  const client = createClient({ caUrl: values.ca!, rootPem: readFileSync(values.root!, 'utf8') });
  const info = await client.provisioner(name);
  if (info.oidc === undefined)
    throw new UsageError(
      `provisioner ${name} is a ${info.type} provisioner; signing in needs an oidc one (a ${info.type} provisioner takes ${info.type === 'jwk' ? '--token' : 'its own credential'})`,
    );
  let timeoutMs = DEFAULT_LOGIN_TIMEOUT_MS;
  if (typeof values['login-timeout'] === 'string') {
    try {
      timeoutMs = parseDuration(values['login-timeout']);
    } catch (err) {
      throw new UsageError(`--login-timeout: ${(err as Error).message}`);
    }
  }
  const secretFile = values['client-secret-file'];
  const clientSecret = typeof secretFile === 'string' ? readFileSync(secretFile, 'utf8').trim() : undefined;
  if (clientSecret === '') throw new UsageError(`--client-secret-file ${String(secretFile)} is empty`);
  return oidcLogin({
    issuer: info.oidc.issuer,
    clientId: info.oidc.clientId,
    scopes: info.oidc.scopes,
    ...(clientSecret === undefined ? {} : { clientSecret }),
    tell: (text) => process.stderr.write(text),
    open: values.open === true,
    timeoutMs,
  });
}

// Claims that bind the token to this sign-in or session (OpenID Connect Core §2, §3.1.3.6;
// Front-Channel Logout §3): not names, so not shown as template material.
const SIGN_IN_ONLY = new Set(['nonce', 'at_hash', 'c_hash', 'sid', 'azp']);

/**
 * `shortleaf login --provisioner NAME --ca URL --root FILE`: signs in and says who the identity
 * provider says you are, with the claims a template can use. The ID token is kept in memory only
 * and forgotten when the command ends; `shortleaf certificate --provisioner NAME` signs in and
 * spends it in one step.
 */
export async function loginCommand(args: string[]): Promise<void> {
  const { values } = parse(args, { ca: { type: 'string' }, root: { type: 'string' }, ...LOGIN_FLAGS }, [
    'provisioner',
    'ca',
    'root',
  ]);
  const { claims } = await loginForProvisioner(values);
  out(`signed in as ${String(claims.email ?? claims.sub)} (issuer ${String(claims.iss)})`);
  out('claims a certificate template can use:');
  for (const [k, v] of Object.entries(claims)) if (typeof v === 'string' && !SIGN_IN_ONLY.has(k)) out(`  {${k}}: ${v}`);
}
