import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { AuthorityError, type Authority, type IssuedCertificate, type Logger, type Revoke } from '@shortleaf/authority';
import { encodeCertificates, encodePem, normalizeSerial } from '@shortleaf/pki';
import { readJsonObject } from './body.js';
import { provisionerInfo, type StoredProvisioner } from './provisioner-info.js';
import { ApiError, RETRY_AFTER_SECONDS, toProblem } from './problems.js';

export interface ApiAppOptions {
  authority: Authority;
  /** Accepted `aud` values for sign tokens: the sign URL under every name this server answers to. */
  signAudiences: readonly string[];
  /** DER of the certificate the client presented over TLS, or null. Supplied by the server wiring. */
  clientCertificate(c: Context): Uint8Array | null;
  /** Who is asking, for the audit log (the peer address). */
  requester(c: Context): string;
  /** The trusted roots, read per request: a root rollover adds one while the server runs. */
  roots: readonly Uint8Array[] | (() => readonly Uint8Array[]);
  /**
   * Intermediates in service (staged, active, retired with live certificates), active first, for
   * `/intermediates.pem`; the active intermediate alone when absent.
   */
  intermediates?: () => readonly Uint8Array[];
  logger: Logger;
  maxBodyBytes: number;
  /** Deepest JSON nesting a request body may have (`limits.maxJsonDepth`); 8 when absent. */
  maxJsonDepth?: number;
  /** Records a revocation (the authority's revoker); absent, /api/v1/revoke answers 404. */
  revoke?: Revoke;
  /** Accepted `aud` values for revoke tokens. */
  revokeAudiences?: readonly string[];
  /** Conditions an operator should act on soon (a root CRL about to lapse…), for /health. */
  warnings?: () => string[];
  /**
   * Reads a provisioner, for `GET /api/v1/provisioners/NAME` (what `shortleaf login` learns an
   * OpenID provider from); absent, that route answers 404.
   */
  getProvisioner?: (name: string) => Promise<StoredProvisioner | null>;
}

function normalizeRequestSerial(serial: string): string {
  try {
    return normalizeSerial(serial);
  } catch (cause) {
    throw new AuthorityError(
      'certificateNotFound',
      `${JSON.stringify(serial.slice(0, 60))} is not a hexadecimal serial number`,
      { cause },
    );
  }
}

function issuedBody(cert: IssuedCertificate) {
  return {
    serial: cert.serial,
    certificate: encodePem('CERTIFICATE', cert.der),
    chain: encodeCertificates(cert.chain),
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
  };
}

/**
 * The REST front door as a Hono app: trust bundles, health, `/api/v1/sign` (one-time token) and
 * `/api/v1/renew` (mutual TLS). It only translates HTTP to authority calls and errors to RFC 7807
 * problem documents; every decision is the authority's.
 */
export function createApiApp(opts: ApiAppOptions): Hono {
  const app = new Hono();
  const roots = opts.roots;
  const rootsPem = typeof roots === 'function' ? () => encodeCertificates(roots()) : () => encodeCertificates(roots);
  const intermediatesPem = () => encodeCertificates(opts.intermediates?.() ?? opts.authority.chain);

  app.onError((err, c) => {
    const { problem, internal, retryAfterS } = toProblem(err);
    if (internal) opts.logger.error('request_failed', { path: c.req.path, error: err.message, stack: err.stack });
    // A refused oversized body is never read to its end: close rather than leave the socket paused.
    if (problem.status === 413) c.header('connection', 'close');
    // A 503 is the database or the intermediate being unavailable for a moment: say when to retry.
    if (problem.status === 503) c.header('retry-after', String(RETRY_AFTER_SECONDS));
    if (retryAfterS !== undefined) c.header('retry-after', String(retryAfterS));
    c.header('content-type', 'application/problem+json');
    return c.body(JSON.stringify(problem), problem.status as 400);
  });
  app.notFound(() => {
    throw new ApiError('notFound', 'no such endpoint');
  });

  const limit = bodyLimit({
    maxSize: opts.maxBodyBytes,
    onError: () => {
      throw new ApiError(
        'bodyTooLarge',
        `the request body is larger than ${opts.maxBodyBytes} bytes (limits.maxBodyBytes)`,
      );
    },
  });

  app.get('/health', (c) => {
    const warnings = opts.warnings?.() ?? [];
    return c.json({
      status: warnings.length === 0 ? 'ok' : 'warn',
      warnings,
      issuer: opts.authority.issuer.name,
      issuerNotAfter: opts.authority.issuer.certificate.notAfter.toISOString(),
    });
  });
  app.get('/roots.pem', (c) => c.body(rootsPem(), 200, { 'content-type': 'application/x-pem-file' }));
  app.get('/intermediates.pem', (c) => c.body(intermediatesPem(), 200, { 'content-type': 'application/x-pem-file' }));

  app.post('/api/v1/sign', limit, async (c) => {
    const body = await readJsonObject(c, ['csr', 'token', 'notAfter'], opts.maxJsonDepth);
    const cert = await opts.authority.sign({
      csr: body.csr,
      token: body.token,
      notAfter: body.notAfter,
      audiences: opts.signAudiences,
      requester: opts.requester(c),
    });
    opts.logger.info('certificate_issued', {
      serial: cert.serial,
      names: cert.names.map((n) => n.value),
      notAfter: cert.notAfter.toISOString(),
      via: 'sign',
    });
    return c.json(issuedBody(cert), 201);
  });

  app.post('/api/v1/renew', limit, async (c) => {
    // A bare POST renews with the same key; a JSON body with a CSR rekeys.
    const body = c.req.header('content-type') === undefined ? {} : await readJsonObject(c, ['csr'], opts.maxJsonDepth);
    const cert = await opts.authority.renew({
      clientCertificate: opts.clientCertificate(c),
      csr: body.csr,
      requester: opts.requester(c),
    });
    opts.logger.info('certificate_renewed', {
      serial: cert.serial,
      names: cert.names.map((n) => n.value),
      notAfter: cert.notAfter.toISOString(),
      via: 'renew',
    });
    return c.json(issuedBody(cert), 201);
  });

  const revoke = opts.revoke;
  if (revoke !== undefined) {
    app.post('/api/v1/revoke', limit, async (c) => {
      const body = await readJsonObject(c, ['serial', 'reason', 'token'], opts.maxJsonDepth);
      if (typeof body.serial !== 'string') throw new ApiError('badRequest', 'serial (hexadecimal) is required');
      const serial = normalizeRequestSerial(body.serial);
      const { actor, tokenUse, keyProven } = await opts.authority.authorizeRevocation({
        serial,
        token: body.token,
        clientCertificate: opts.clientCertificate(c),
        audiences: opts.revokeAudiences ?? [],
      });
      const result = await revoke({
        serial,
        reason: body.reason,
        actor,
        requester: opts.requester(c),
        keyProven,
        ...(tokenUse === undefined ? {} : { tokenUse }),
      });
      return c.json(
        {
          serial: result.serial,
          revokedAt: result.revokedAt.toISOString(),
          reason: result.reason,
          alreadyRevoked: result.alreadyRevoked,
          ...(result.previousReason === undefined ? {} : { previousReason: result.previousReason }),
          alsoRevoked: result.also,
          keyBlocked: result.keyBlocked,
        },
        200,
      );
    });
  }

  const getProvisioner = opts.getProvisioner;
  if (getProvisioner !== undefined) {
    // Public by design (a browser sees the same in the IdP's login URL); no credential needed.
    app.get('/api/v1/provisioners/:name', async (c) => {
      const name = c.req.param('name');
      const row = await getProvisioner(name);
      if (row === null) throw new ApiError('notFound', `no provisioner named ${JSON.stringify(name.slice(0, 100))}`);
      return c.json(provisionerInfo(row), 200);
    });
  }

  for (const path of ['/api/v1/sign', '/api/v1/renew', '/api/v1/revoke']) {
    app.all(path, () => {
      throw new ApiError('methodNotAllowed', `${path} accepts POST only`);
    });
  }
  // Last, and a route rather than only `notFound`: an app mounted with `app.route()` brings its
  // routes and its onError but not its notFound.
  app.all('*', () => {
    throw new ApiError('notFound', 'no such endpoint');
  });
  return app;
}
