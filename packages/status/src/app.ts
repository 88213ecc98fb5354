import { Hono, type Context } from 'hono';
import type { CrlRow, RootCrlRow } from '@shortleaf/authority';
import { encodeCertificates, encodePem } from '@shortleaf/pki';
import { notModified, problemBody, secondsUntil } from './http-cache.js';

export interface StatusAppOptions {
  /** DER of the active intermediate, served at the caIssuers URL that leaves embed. */
  intermediate: Uint8Array;
  roots: readonly Uint8Array[];
  /** The intermediate's current CRL, or null before the first one is built. */
  crl(): CrlRow | null;
  /** The newest imported root CRL, or null. */
  rootCrl(): RootCrlRow | null;
  /** Longest time an HTTP cache may keep a CRL before asking again (seconds), within nextUpdate. */
  crlMaxAgeSeconds: number;
  now(): Date;
  onError(event: string, fields: Record<string, unknown>): void;
}

/** Path of the issuer certificate on the status listener; leaves point their AIA caIssuers here. */
export const CA_ISSUERS_PATH = '/intermediate.crt';

const problem = (c: Context, status: 404 | 503, code: string, detail: string) => {
  c.header('content-type', 'application/problem+json');
  return c.body(problemBody(status, code, detail), status);
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
  const rootsPem = encodeCertificates(opts.roots);

  app.onError((err, c) => {
    opts.onError('status_request_failed', { path: c.req.path, error: err.message });
    return problem(c, 503, 'internal', 'the status service failed to answer; the cause is in its log');
  });
  app.notFound((c) => problem(c, 404, 'notFound', 'no such resource on the status listener'));

  app.get(CA_ISSUERS_PATH, (c) => c.body(new Uint8Array(opts.intermediate), 200, { 'content-type': 'application/pkix-cert', 'cache-control': 'public, max-age=3600' }));
  app.get('/roots.pem', (c) => c.body(rootsPem, 200, { 'content-type': 'application/x-pem-file' }));
  app.get('/health', (c) => c.json({ status: 'ok' }));

  function serveCrl(c: Context, row: { number: bigint; thisUpdate: Date; nextUpdate: Date; der: Uint8Array } | null, pem: boolean) {
    if (row === null) return problem(c, 404, 'notFound', 'no CRL has been published yet');
    const etag = pem ? crlEtag(row).replace(/"$/, '-pem"') : crlEtag(row);
    c.header('etag', etag);
    c.header('last-modified', row.thisUpdate.toUTCString());
    c.header('expires', row.nextUpdate.toUTCString());
    c.header('cache-control', `public, max-age=${secondsUntil(row.nextUpdate, opts.now(), opts.crlMaxAgeSeconds)}, no-transform`);
    if (notModified(c, etag, row.thisUpdate)) return c.body(null, 304);
    if (pem) return c.body(encodePem('X509 CRL', row.der), 200, { 'content-type': 'application/x-pem-file' });
    return c.body(new Uint8Array(row.der), 200, { 'content-type': 'application/pkix-crl' });
  }

  app.get('/crl', (c) => serveCrl(c, opts.crl(), false));
  app.get('/crl.pem', (c) => serveCrl(c, opts.crl(), true));
  app.get('/root.crl', (c) => serveCrl(c, opts.rootCrl(), false));

  return app;
}
