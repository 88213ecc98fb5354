import { createServer, type Server } from 'node:http';
import { request } from 'node:https';
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from './atomic-file.js';
import { FlattenedSign, calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import {
  createCsr,
  csrToPem,
  decodePem,
  encodePem,
  generateKeyPair as generateCertificateKey,
  parseName,
  type KeyTypeName,
} from '@shortleaf/pki';

/** How the agent gets its first certificate over ACME (RFC 8555) instead of with a token. */
export interface AcmeBootstrapOptions {
  directoryUrl: string;
  rootPem: string;
  names: string[];
  keyType: KeyTypeName;
  /** Where the agent answers http-01 itself, host:port (the CA fetches port 80 unless configured). */
  http01: { host: string; port: number };
  /** External Account Binding (RFC 8555 §7.3.4), when the provisioner requires it. */
  eab: { kid: string; hmacKey: string } | null;
  contact: string | null;
  timeoutMs: number;
  /** The key to certify (PKCS#8 PEM), when renewing without a new key; a fresh one when absent. */
  keyPem?: string;
  /**
   * Where the ACME account key is kept (PKCS#8 PEM, 0600), made on first use. Renewing and
   * bootstrapping again then use the same account: an EAB key binds one account, once (RFC 8555
   * §7.3.4), so a fresh account key could never come back.
   */
  accountKeyFile?: string;
}

/** The ACME server refused or the exchange failed; `type` is its ACME error type when it sent one. */
export class AcmeBootstrapError extends Error {
  override readonly name = 'AcmeBootstrapError';
  constructor(
    message: string,
    readonly type: string | null = null,
    readonly status: number | null = null,
  ) {
    super(message);
  }
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

const encoder = new TextEncoder();

/** The account key kept in `file`, made (P-256, for ES256) and written 0600 the first time. */
function accountKey(file: string): { privateKey: KeyObject; publicKey: KeyObject } {
  if (!existsSync(file))
    writeFileAtomic(
      file,
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
      0o600,
    );
  const privateKey = createPrivateKey(readFileSync(file, 'utf8'));
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    throw new AcmeBootstrapError(`${file} is not a P-256 ACME account key`);
  return { privateKey, publicKey: createPublicKey(privateKey) };
}
const json = <T>(r: Reply): T => JSON.parse(r.body.toString('utf8')) as T;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Gets a first certificate over ACME: a fresh account key (kept only for this exchange), an
 * order for `names`, http-01 answered by a short-lived server of the agent's own, a key and CSR
 * made here (or the current key, when renewing without --rekey), finalize, download. An ACME
 * certificate renews this same way: a new order, whose authorizations the CA checks again.
 */
export async function acmeBootstrap(
  opts: AcmeBootstrapOptions,
): Promise<{ certPem: string; chainPem: string; keyPem: string; serial?: string; notAfter?: string }> {
  if (opts.names.length === 0) throw new AcmeBootstrapError('--acme needs at least one --san: the names to order');
  const deadline = Date.now() + opts.timeoutMs;

  function call(method: string, url: string, body?: string): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method,
          ca: opts.rootPem,
          timeout: Math.max(1, deadline - Date.now()),
          headers:
            body === undefined
              ? {}
              : { 'content-type': 'application/jose+json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new AcmeBootstrapError(`no answer from ${new URL(url).origin} in time`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  const directory = json<Record<string, string>>(await call('GET', opts.directoryUrl));
  if (typeof directory.newNonce !== 'string' || typeof directory.newAccount !== 'string')
    throw new AcmeBootstrapError(`${opts.directoryUrl} is not an ACME directory`);
  const { privateKey, publicKey } =
    opts.accountKeyFile === undefined ? await generateKeyPair('ES256') : accountKey(opts.accountKeyFile);
  const jwk: JWK = await exportJWK(publicKey);
  const thumbprint = await calculateJwkThumbprint(jwk);
  let kid: string | null = null;
  let nonce: string | null = null;

  async function post(url: string, payload: unknown): Promise<Reply> {
    for (let attempt = 0; ; attempt++) {
      if (nonce === null) nonce = String((await call('HEAD', directory.newNonce!)).headers['replay-nonce']);
      const header = { alg: 'ES256', nonce, url, ...(kid === null ? { jwk } : { kid }) };
      const bytes = payload === '' ? new Uint8Array(0) : encoder.encode(JSON.stringify(payload));
      const reply = await call(
        'POST',
        url,
        JSON.stringify(await new FlattenedSign(bytes).setProtectedHeader(header).sign(privateKey)),
      );
      const next = reply.headers['replay-nonce'];
      nonce = typeof next === 'string' ? next : null;
      if (reply.status < 400) return reply;
      let problem: { type?: string; detail?: string } = {};
      try {
        problem = json(reply);
      } catch {
        /* not a problem document */
      }
      const type = problem.type?.replace('urn:ietf:params:acme:error:', '') ?? null;
      if (type === 'badNonce' && attempt < 3) continue;
      throw new AcmeBootstrapError(
        `${new URL(url).pathname}: ${problem.detail ?? `HTTP ${reply.status}`}${type === null ? '' : ` (${type})`}`,
        type,
        reply.status,
      );
    }
  }

  async function poll<T extends { status: string }>(url: string, done: (s: string) => boolean): Promise<T> {
    for (;;) {
      const reply = await post(url, '');
      const body = json<T>(reply);
      if (done(body.status)) return body;
      if (Date.now() > deadline) throw new AcmeBootstrapError(`${url} still ${body.status} when the time ran out`);
      await sleep(Math.min(Number(reply.headers['retry-after'] ?? 1) * 1000, 2_000));
    }
  }

  // Account (with EAB when asked), then the order.
  const account: Record<string, unknown> = {
    termsOfServiceAgreed: true,
    ...(opts.contact === null ? {} : { contact: [`mailto:${opts.contact}`] }),
  };
  if (opts.eab !== null) {
    account.externalAccountBinding = await new FlattenedSign(encoder.encode(JSON.stringify(jwk)))
      .setProtectedHeader({ alg: 'HS256', kid: opts.eab.kid, url: directory.newAccount })
      .sign(Buffer.from(opts.eab.hmacKey, 'base64url'));
  }
  kid = String((await post(directory.newAccount, account)).headers.location);
  const names = opts.names.map((n) => parseName(n));
  const created = await post(directory.newOrder!, {
    identifiers: names.map((n) => ({ type: n.kind === 'ip' ? 'ip' : 'dns', value: n.value })),
  });
  const orderUrl = String(created.headers.location);
  const order = json<{ authorizations: string[]; finalize: string }>(created);

  // http-01: answer every challenge of this order from one short-lived server.
  const answers = new Map<string, string>();
  const server: Server = createServer((req, res) => {
    const token = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(req.url ?? '')?.[1];
    const answer = token === undefined ? undefined : answers.get(token);
    if (answer === undefined) res.writeHead(404).end();
    else res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(answer);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) =>
      reject(
        new AcmeBootstrapError(`cannot answer http-01 on ${opts.http01.host}:${opts.http01.port}: ${err.message}`),
      ),
    );
    server.listen(opts.http01.port, opts.http01.host, () => resolve());
  });
  try {
    for (const authzUrl of order.authorizations) {
      const authz = json<{
        status: string;
        identifier: { value: string };
        challenges: Array<{ type: string; url: string; token: string }>;
      }>(await post(authzUrl, ''));
      if (authz.status === 'valid') continue;
      const challenge = authz.challenges.find((c) => c.type === 'http-01');
      if (challenge === undefined)
        throw new AcmeBootstrapError(
          `${authz.identifier.value} is not offered http-01 (a wildcard needs dns-01, which the agent does not answer)`,
        );
      answers.set(challenge.token, `${challenge.token}.${thumbprint}`);
      await post(challenge.url, {});
      const result = await poll<{ status: string; challenges: Array<{ error?: { detail?: string } }> }>(
        authzUrl,
        (s) => s !== 'pending',
      );
      if (result.status !== 'valid')
        throw new AcmeBootstrapError(
          `validation of ${authz.identifier.value} failed: ${result.challenges.find((c) => c.error)?.error?.detail ?? result.status}`,
        );
    }
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }

  // Key and CSR made here; the key never leaves this machine.
  const key =
    opts.keyPem === undefined ? generateCertificateKey(opts.keyType).privateKey : createPrivateKey(opts.keyPem);
  const csr = Buffer.from(
    decodePem(csrToPem(createCsr(key, { commonName: names[0]!.kind === 'dns' ? names[0]!.value : null }, names)))[0]!
      .der,
  ).toString('base64url');
  await post(order.finalize, { csr });
  const valid = await poll<{ status: string; certificate?: string }>(orderUrl, (s) => s === 'valid' || s === 'invalid');
  if (valid.status !== 'valid' || valid.certificate === undefined)
    throw new AcmeBootstrapError(`the order ended ${valid.status}`);
  const pem = (await post(valid.certificate, '')).body.toString('utf8');
  const blocks = decodePem(pem).filter((b) => b.label === 'CERTIFICATE');
  if (blocks.length === 0) throw new AcmeBootstrapError('the certificate download held no certificate');
  const chainPem = blocks
    .slice(1)
    .map((b) => encodePem('CERTIFICATE', b.der))
    .join('');
  return {
    certPem: encodePem('CERTIFICATE', blocks[0]!.der) + chainPem,
    chainPem,
    keyPem: key.export({ format: 'pem', type: 'pkcs8' }) as string,
  };
}
