import { Hono, type Context } from 'hono';
import { rootFingerprint, type CrlRow, type RootCrlRow } from '@shortleaf/authority';
import { encodeCertificates, encodePem } from '@shortleaf/pki';
import { notModified, secondsUntil } from './http-cache.js';
import { statusProblem, type StatusProblemCode } from './problems.js';

/** An intermediate in service, as the status listener publishes it. */
export interface PublishedIssuer {
  name: string;
  /** DER of its certificate. */
  certificate: Uint8Array;
  /** Its current CRL, or null before the first one is built. */
  crl(): CrlRow | null;
}

export interface StatusAppOptions {
  /**
   * Intermediates in service, the active one first: it answers `/crl` and `/intermediate.crt`.
   * Read per request, so an activation or an import shows at once.
   */
  issuers(): readonly PublishedIssuer[];
  /** The trusted roots, read per request (a root rollover adds one). */
  roots(): readonly Uint8Array[];
  /** The newest imported CRL of the active intermediate's root, or null. */
  rootCrl(): RootCrlRow | null;
  /** The newest imported CRL of any root, by its SHA-256 fingerprint (lower-case hex), or null. */
  rootCrlOf?(fingerprint: string): RootCrlRow | null;
  /** Longest time an HTTP cache may keep a CRL before asking again (seconds), within nextUpdate. */
  crlMaxAgeSeconds: number;
  now(): Date;
  onError(event: string, fields: Record<string, unknown>): void;
}

/** Path of the active intermediate's certificate on the status listener. */
const CA_ISSUERS_PATH = '/intermediate.crt';

/**
 * Where one intermediate's certificate and CRL live. Leaves carry these, not the active
 * intermediate's paths, so they keep leading to their own issuer after a rotation.
 */
export const issuerPaths = (name: string): { crl: string; caIssuers: string } => ({
  crl: `/crl/${name}`,
  caIssuers: `/intermediate/${name}.crt`,
});

const problem = (c: Context, code: Extract<StatusProblemCode, 'notFound' | 'internal'>, detail: string) => {
  const { status, body } = statusProblem(code, detail);
  c.header('content-type', 'application/problem+json');
  return c.body(body, status);
};

const crlEtag = (row: { number: bigint; der: Uint8Array }) => `"crl-${row.number}-${row.der.length}"`;

/**
 * The public, plain-HTTP listener for what relying parties fetch without credentials: the CRLs,
 * the root CRL, the issuer certificate. Plain HTTP on purpose (RFC 5280 §4.2.2.1): checking
 * revocation over TLS would need revocation data first. OCSP, the hot path, is served beside it
 * on node:http (ocsp-http.ts).
 */
export function createStatusApp(opts: StatusAppOptions): Hono {
  const app = new Hono();
  const active = (): PublishedIssuer | undefined => opts.issuers()[0];
  const named = (name: string): PublishedIssuer | undefined => opts.issuers().find((i) => i.name === name);

  app.onError((err, c) => {
    opts.onError('status_request_failed', { path: c.req.path, error: err.message });
    return problem(c, 'internal', 'the status service failed to answer; the cause is in its log');
  });
  app.notFound((c) => problem(c, 'notFound', 'no such resource on the status listener'));

  const serveCertificate = (c: Context, issuer: PublishedIssuer | undefined) =>
    issuer === undefined
      ? problem(c, 'notFound', 'no intermediate of that name is in service')
      : c.body(new Uint8Array(issuer.certificate), 200, {
          'content-type': 'application/pkix-cert',
          'cache-control': 'public, max-age=3600',
        });
  app.get(CA_ISSUERS_PATH, (c) => serveCertificate(c, active()));
  app.get('/intermediate/:file', (c) => serveCertificate(c, named(c.req.param('file').replace(/\.crt$/, ''))));
  app.get('/intermediates.pem', (c) =>
    c.body(encodeCertificates(opts.issuers().map((i) => i.certificate)), 200, {
      'content-type': 'application/x-pem-file',
    }),
  );
  app.get('/roots.pem', (c) =>
    c.body(encodeCertificates(opts.roots()), 200, { 'content-type': 'application/x-pem-file' }),
  );
  app.get('/health', (c) => c.json({ status: 'ok' }));

  function serveCrl(
    c: Context,
    row: { number: bigint; thisUpdate: Date; nextUpdate: Date; der: Uint8Array } | null,
    pem: boolean,
  ) {
    if (row === null) return problem(c, 'notFound', 'no CRL has been published yet');
    const etag = pem ? crlEtag(row).replace(/"$/, '-pem"') : crlEtag(row);
    c.header('etag', etag);
    c.header('last-modified', row.thisUpdate.toUTCString());
    c.header('expires', row.nextUpdate.toUTCString());
    c.header(
      'cache-control',
      `public, max-age=${secondsUntil(row.nextUpdate, opts.now(), opts.crlMaxAgeSeconds)}, no-transform`,
    );
    if (notModified(c, etag, row.thisUpdate)) return c.body(null, 304);
    if (pem) return c.body(encodePem('X509 CRL', row.der), 200, { 'content-type': 'application/x-pem-file' });
    return c.body(new Uint8Array(row.der), 200, { 'content-type': 'application/pkix-crl' });
  }

  app.get('/crl', (c) => serveCrl(c, active()?.crl() ?? null, false));
  app.get('/crl.pem', (c) => serveCrl(c, active()?.crl() ?? null, true));
  app.get('/crl/:file', (c) => {
    const file = c.req.param('file');
    const pem = file.endsWith('.pem');
    const issuer = named(pem ? file.slice(0, -4) : file);
    if (issuer === undefined) return problem(c, 'notFound', 'no intermediate of that name is in service');
    return serveCrl(c, issuer.crl(), pem);
  });
  app.get('/root.crl', (c) => serveCrl(c, opts.rootCrl(), false));
  // Every root's CRL by its SHA-256 fingerprint, as `openssl x509 -fingerprint -sha256` prints it
  // (colons and case do not matter): during a root rollover proxies need the old root's CRL too.
  // `.crt` is the root's certificate in DER, the caIssuers (RFC 5280 §4.2.2.1) intermediates name.
  app.get('/root/:file', (c) => {
    const m = /^([0-9A-Fa-f:]{64,95})\.(crl|crt)$/.exec(c.req.param('file'));
    const fingerprint = m?.[1]!.replace(/:/g, '').toLowerCase();
    if (fingerprint === undefined || fingerprint.length !== 64)
      return problem(c, 'notFound', 'give a root as /root/{SHA-256 fingerprint}.crl or .crt');
    if (m![2] === 'crl') return serveCrl(c, opts.rootCrlOf?.(fingerprint) ?? null, false);
    const root = opts.roots().find((der) => rootFingerprint(der) === fingerprint);
    if (root === undefined) return problem(c, 'notFound', 'no root with that SHA-256 fingerprint is trusted here');
    return c.body(new Uint8Array(root), 200, {
      'content-type': 'application/pkix-cert',
      'cache-control': 'public, max-age=3600',
    });
  });

  // Last, and a route rather than only `notFound`: an app mounted with `app.route()` brings its
  // routes and its onError but not its notFound.
  app.all('*', (c) => problem(c, 'notFound', 'no such resource on the status listener'));
  return app;
}
