/**
 * Shared harness for the ACME protocol tests (imported only by `*.test.ts`): the real app over a
 * real CA (SQLite on a temporary file, the authority of the authority tests, a real revoker), the
 * real validator pointed at a loopback HTTP server that answers http-01 from a map the test fills,
 * and a small ACME client built on jose. Nothing is mocked; time is the fixture's movable clock.
 */
import assert from 'node:assert/strict';
import { KeyObject, randomBytes, sign as nodeSign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { FlattenedSign, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { createRevoker } from '@shortleaf/authority';
import { parseCertificate, readCertificates, type CertificateInfo } from '@shortleaf/pki';
import {
  DAY,
  HOUR,
  T0,
  createTestCa,
  makeCsr,
  serialBytes,
  type TestCa,
  type TestCsr,
} from '../../authority/src/test-fixtures.js';
import { createAcmeApp } from './app.js';
import { ACME_ERROR_PREFIX } from './errors.js';
import type { ValidationLimits } from './validation-runner.js';
import { createValidator } from './validators/index.js';

export { HOUR, makeCsr };

export const BASE = 'https://ca.test';
export const MAX_BODY_BYTES = 16 * 1024;
export const ORDER_LIFETIME_MS = 8 * HOUR;
export const AUTHORIZATION_LIFETIME_MS = 30 * DAY;
/** Names the validator resolves to the loopback challenge server. */
export const VALIDATABLE = ['svc1.test', 'svc2.test', 'svc3.test', 'svc4.test', 'svc5.test', 'a.allowed.test'];

const encoder = new TextEncoder();
export const b64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

export interface Problem {
  type: string;
  detail: string;
  status: number;
  subproblems?: Array<{ type: string; detail: string; identifier: { type: string; value: string } }>;
}
export interface Identifier {
  type: string;
  value: string;
}
export interface AccountBody {
  status: string;
  contact: string[];
  orders: string;
}
export interface OrderBody {
  status: string;
  expires: string;
  identifiers: Identifier[];
  authorizations: string[];
  finalize: string;
  certificate?: string;
  notAfter?: string;
  error?: Problem;
  replaces?: string;
}
export interface ChallengeBody {
  type: string;
  url: string;
  status: string;
  token: string;
  validated?: string;
  error?: Problem;
}
export interface AuthorizationBody {
  identifier: Identifier;
  status: string;
  expires: string;
  challenges: ChallengeBody[];
  wildcard?: boolean;
}

/** A response with its body read: parsed JSON when it is JSON, else null. */
export interface Reply<T> {
  status: number;
  headers: Headers;
  text: string;
  body: T;
}

/** An account key: what signs, its public JWK, and the JWS algorithm it signs with. */
export interface AccountKey {
  privateKey: CryptoKey | KeyObject;
  publicJwk: JWK;
  alg: string;
}

export async function newKey(alg: 'ES256' | 'ES384' | 'RS256' | 'EdDSA' = 'ES256'): Promise<AccountKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { privateKey, publicJwk: await exportJWK(publicKey), alg };
}

/** The key of a CSR (and so of the certificate issued for it), as an ACME signing key. */
export function csrKey(csr: TestCsr): AccountKey {
  const jwk = csr.privateKey.export({ format: 'jwk' }) as JWK;
  const { d: _d, ...publicJwk } = jwk;
  return { privateKey: csr.privateKey, publicJwk, alg: 'ES256' };
}

/** A flattened JWS with any header and signature, for requests jose refuses to make. */
export function rawJws(header: Record<string, unknown>, payload: unknown, signature = b64url(randomBytes(64))): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return JSON.stringify({ protected: enc(header), payload: payload === '' ? '' : enc(payload), signature });
}

/**
 * A flattened JWS signed with node:crypto over any protected header (ES256 keys only), for
 * headers jose refuses to sign, such as unknown `crit` extensions.
 */
export function signRaw(header: Record<string, unknown>, payload: unknown, key: AccountKey): string {
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const prot = enc(header);
  const body = payload === '' ? '' : enc(payload);
  const privateKey = key.privateKey instanceof KeyObject ? key.privateKey : KeyObject.from(key.privateKey);
  const signature = nodeSign('sha256', Buffer.from(`${prot}.${body}`), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return JSON.stringify({ protected: prot, payload: body, signature: signature.toString('base64url') });
}

/** Asserts what RFC 8555 §6.5 and §7.1 require of every ACME response. */
export function assertAcmeHeaders(res: { headers: Headers }, provisioner: string): void {
  assert.match(res.headers.get('replay-nonce') ?? '', /^[A-Za-z0-9_-]{22}$/, 'every response carries a Replay-Nonce');
  assert.ok(
    (res.headers.get('link') ?? '').includes(`<${BASE}/acme/${provisioner}/directory>;rel="index"`),
    `Link to the directory missing: ${res.headers.get('link')}`,
  );
}

/** The reply is a problem document of this status and type whose detail mentions `fragment`. */
export function expectProblem(reply: Reply<unknown>, status: number, type: string, fragment: string): Problem {
  assert.equal(reply.status, status, reply.text);
  assert.equal(reply.headers.get('content-type'), 'application/problem+json');
  const problem = reply.body as Problem;
  assert.equal(problem.type, `${ACME_ERROR_PREFIX}${type}`, reply.text);
  assert.equal(problem.status, status);
  assert.ok(problem.detail.includes(fragment), `"${problem.detail}" should mention "${fragment}"`);
  return problem;
}

export async function read<T>(res: Response): Promise<Reply<T>> {
  const text = await res.text();
  const json = /json/.test(res.headers.get('content-type') ?? '') && text !== '';
  return { status: res.status, headers: res.headers, text, body: (json ? JSON.parse(text) : null) as T };
}

/** The ARI certificate identifier (RFC 9773 §4.1) of a certificate. */
export function certId(cert: CertificateInfo): string {
  return `${b64url(cert.authorityKeyIdentifier!)}.${b64url(serialBytes(cert.serial))}`;
}

export interface AcmeHarness {
  ca: TestCa;
  app: ReturnType<typeof createAcmeApp>['app'];
  /** Serials the revoker reported, in order (where OCSP and the CRL publisher are told). */
  revoked: string[];
  /** What the challenge server answers per http-01 token. */
  responses: Map<string, string>;
  /** The loopback port the challenge server listens on, which http-01 dials. */
  httpPort: number;
  /** Adds an ACME provisioner with these options and policy. */
  addProvisioner(name: string, options?: Record<string, unknown>, policy?: Record<string, unknown>): Promise<void>;
  /** A client with a fresh key for `provisioner` (no account yet). */
  client(provisioner?: string): Promise<AcmeClient>;
  /** A client with a newly registered account (asserting the 201). */
  account(provisioner?: string): Promise<AcmeClient>;
  close(): Promise<void>;
}

/** Builds the app over a fresh CA with the provisioner `acme` (no options, no policy). Make one per file. */
export async function createAcmeHarness(
  opts: { hosts?: Record<string, string>; timeoutMs?: number; validationLimits?: Partial<ValidationLimits> } = {},
): Promise<AcmeHarness> {
  const ca = await createTestCa();
  const responses = new Map<string, string>();
  const server: Server = createServer((req, res) => {
    const token = /^\/\.well-known\/acme-challenge\/([A-Za-z0-9_-]+)$/.exec(req.url ?? '')?.[1];
    const answer = token === undefined ? undefined : responses.get(token);
    if (answer === undefined) res.writeHead(404).end('no such token\n');
    else res.writeHead(200, { 'content-type': 'text/plain' }).end(answer);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const httpPort = (server.address() as AddressInfo).port;
  const revoked: string[] = [];
  const revoke = createRevoker({
    store: ca.store,
    clock: ca.clock,
    logger: ca.logger,
    onRevoked: (serial) => void revoked.push(serial),
  });
  const acme = createAcmeApp({
    store: ca.store.acme,
    certificates: ca.store,
    authority: ca.authority,
    revoke,
    sealer: ca.sealer,
    validate: createValidator({
      httpPort,
      tlsPort: 1,
      dnsResolver: null,
      hosts: { ...Object.fromEntries(VALIDATABLE.map((n) => [n, '127.0.0.1'])), ...opts.hosts },
      timeoutMs: opts.timeoutMs ?? 2_000,
    }),
    clock: ca.clock,
    random: (n) => new Uint8Array(randomBytes(n)),
    logger: ca.logger,
    maxBodyBytes: MAX_BODY_BYTES,
    orderLifetimeMs: ORDER_LIFETIME_MS,
    authorizationLifetimeMs: AUTHORIZATION_LIFETIME_MS,
    ...(opts.validationLimits === undefined ? {} : { validationLimits: opts.validationLimits }),
  });
  const addProvisioner = (name: string, options: Record<string, unknown> = {}, policy: Record<string, unknown> = {}) =>
    ca.store.addProvisioner({
      name,
      type: 'acme',
      publicJwk: null,
      policy: JSON.stringify(policy),
      options: JSON.stringify(options),
      createdAt: T0,
    });
  await addProvisioner('acme');
  const harness: AcmeHarness = {
    ca,
    app: acme.app,
    revoked,
    responses,
    httpPort,
    addProvisioner,
    client: async (provisioner = 'acme') => new AcmeClient(harness, provisioner, await newKey()),
    account: async (provisioner = 'acme') => {
      const client = new AcmeClient(harness, provisioner, await newKey());
      const reply = await client.newAccount();
      assert.equal(reply.status, 201, reply.text);
      return client;
    },
    close: async () => {
      await acme.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await ca.close();
    },
  };
  return harness;
}

export interface PostOptions {
  /** Sign with this key instead of the account's. */
  key?: AccountKey;
  /** Name the key with `jwk` instead of the account's `kid`. */
  jwk?: boolean;
  /** Use this nonce (null: none) instead of a fresh one. */
  nonce?: string | null;
  /** Sign for this `url` instead of the request URL. */
  url?: string;
}

/** A minimal RFC 8555 client speaking to the app in process; every response's headers are checked. */
export class AcmeClient {
  kid: string | null = null;

  constructor(
    readonly harness: AcmeHarness,
    readonly provisioner: string,
    public key: AccountKey,
  ) {}

  url(path: string): string {
    return `${BASE}/acme/${this.provisioner}/${path}`;
  }

  async request<T = unknown>(url: string, init: RequestInit = {}): Promise<Reply<T>> {
    const res = await this.harness.app.request(url, init);
    assertAcmeHeaders(res, this.provisioner);
    return read<T>(res);
  }

  async nonce(): Promise<string> {
    const reply = await this.request(this.url('new-nonce'), { method: 'HEAD' });
    assert.equal(reply.status, 200);
    return reply.headers.get('replay-nonce')!;
  }

  /** Sends a body as application/jose+json. */
  send<T = unknown>(url: string, body: string, headers: Record<string, string> = {}): Promise<Reply<T>> {
    return this.request<T>(url, {
      method: 'POST',
      headers: { 'content-type': 'application/jose+json', ...headers },
      body,
    });
  }

  /** The JWS body of a request: `payload` '' is POST-as-GET. */
  async sign(url: string, payload: unknown, opts: PostOptions = {}): Promise<string> {
    const key = opts.key ?? this.key;
    const nonce = opts.nonce === undefined ? await this.nonce() : opts.nonce;
    const useJwk = opts.jwk === true || this.kid === null;
    const header = {
      alg: key.alg,
      ...(nonce === null ? {} : { nonce }),
      url: opts.url ?? url,
      ...(useJwk ? { jwk: key.publicJwk } : { kid: this.kid! }),
    };
    const bytes = payload === '' ? new Uint8Array(0) : encoder.encode(JSON.stringify(payload));
    return JSON.stringify(await new FlattenedSign(bytes).setProtectedHeader(header).sign(key.privateKey));
  }

  async post<T = unknown>(url: string, payload: unknown, opts: PostOptions = {}): Promise<Reply<T>> {
    return this.send<T>(url, await this.sign(url, payload, opts));
  }

  async newAccount(
    payload: Record<string, unknown> = { termsOfServiceAgreed: true, contact: ['mailto:ops@example.com'] },
    opts: PostOptions = {},
  ): Promise<Reply<AccountBody>> {
    const reply = await this.post<AccountBody>(this.url('new-account'), payload, { ...opts, jwk: true });
    if (reply.status === 200 || reply.status === 201) this.kid = reply.headers.get('location');
    return reply;
  }

  /** An External Account Binding (RFC 8555 §7.3.4) over this client's key. */
  async eabBinding(kid: string, secret: Uint8Array, key: AccountKey = this.key): Promise<unknown> {
    const header = { alg: 'HS256', kid, url: this.url('new-account') };
    return new FlattenedSign(encoder.encode(JSON.stringify(key.publicJwk))).setProtectedHeader(header).sign(secret);
  }

  /** keyChange (RFC 8555 §7.3.5) to `next`; on success the client signs with it from then on. */
  async keyChange(next: AccountKey): Promise<Reply<AccountBody>> {
    const url = this.url('key-change');
    const inner = await new FlattenedSign(
      encoder.encode(JSON.stringify({ account: this.kid, oldKey: this.key.publicJwk })),
    )
      .setProtectedHeader({ alg: next.alg, jwk: next.publicJwk, url })
      .sign(next.privateKey);
    const reply = await this.post<AccountBody>(url, inner);
    if (reply.status === 200) this.key = next;
    return reply;
  }

  async newOrder(
    names: Array<string | Identifier>,
    extra: Record<string, unknown> = {},
  ): Promise<Reply<OrderBody> & { location: string }> {
    const identifiers = names.map((n) =>
      typeof n !== 'string' ? n : { type: isIP(n) === 0 ? 'dns' : 'ip', value: n },
    );
    const reply = await this.post<OrderBody>(this.url('new-order'), { identifiers, ...extra });
    return { ...reply, location: reply.headers.get('location') ?? '' };
  }

  get<T>(url: string): Promise<Reply<T>> {
    return this.post<T>(url, '');
  }

  async keyAuthorization(token: string): Promise<string> {
    return `${token}.${await calculateJwkThumbprint(this.key.publicJwk, 'sha256')}`;
  }

  /**
   * Answers the http-01 challenge of every pending authorization of `order` (with `answer`, the
   * right key authorization by default) and polls each until it leaves pending, bounded.
   */
  async validate(order: OrderBody, answer?: (keyAuthorization: string) => string): Promise<AuthorizationBody[]> {
    const out: AuthorizationBody[] = [];
    for (const url of order.authorizations) {
      let authz = (await this.get<AuthorizationBody>(url)).body;
      if (authz.status === 'pending') {
        const challenge = authz.challenges.find((c) => c.type === 'http-01');
        assert.ok(challenge !== undefined, `no http-01 challenge for ${authz.identifier.value}`);
        const keyAuthorization = await this.keyAuthorization(challenge.token);
        this.harness.responses.set(challenge.token, answer === undefined ? keyAuthorization : answer(keyAuthorization));
        const started = await this.post<ChallengeBody>(challenge.url, {});
        assert.equal(started.status, 200, started.text);
        authz = await this.poll(url);
      }
      out.push(authz);
    }
    return out;
  }

  /** Reads an authorization until it is no longer pending (up to 100 × 20 ms). */
  async poll(url: string): Promise<AuthorizationBody> {
    for (let i = 0; i < 100; i++) {
      const authz = (await this.get<AuthorizationBody>(url)).body;
      if (authz.status !== 'pending') return authz;
      await sleep(20);
    }
    assert.fail(`authorization ${url} stayed pending`);
  }

  finalize(order: OrderBody, csrDer: Uint8Array): Promise<Reply<OrderBody>> {
    return this.post<OrderBody>(order.finalize, { csr: b64url(csrDer) });
  }

  /** newOrder and validate: an order that is ready to finalize. */
  async readyOrder(names: string[]): Promise<{ url: string; order: OrderBody }> {
    const created = await this.newOrder(names);
    assert.equal(created.status, 201, created.text);
    await this.validate(created.body);
    const order = (await this.get<OrderBody>(created.location)).body;
    assert.equal(order.status, 'ready', JSON.stringify(order));
    return { url: created.location, order };
  }

  /** The whole flow: a valid order, its certificate and the CSR (with the certificate's key). */
  async issue(
    names: string[],
  ): Promise<{ url: string; order: OrderBody; csr: TestCsr; certificate: CertificateInfo; pem: string }> {
    const { url, order } = await this.readyOrder(names);
    const csr = makeCsr(names);
    const done = await this.finalize(order, csr.der);
    assert.equal(done.status, 200, done.text);
    assert.equal(done.body.status, 'valid');
    const pem = await this.get<null>(done.body.certificate!);
    assert.equal(pem.status, 200, pem.text);
    const leaf = readCertificates(pem.text)[0]!;
    return { url, order: done.body, csr, certificate: parseCertificate(leaf.der), pem: pem.text };
  }
}
