import { Hono } from 'hono';
import { encodeCertificates } from '@shortleaf/pki';

export interface StatusAppOptions {
  /** DER of the active intermediate, served at the caIssuers URL that leaves embed. */
  intermediate: Uint8Array;
  roots: readonly Uint8Array[];
}

/** Path of the issuer certificate on the status listener; leaves point their AIA caIssuers here. */
export const CA_ISSUERS_PATH = '/intermediate.crt';

/**
 * The public, plain-HTTP listener for data relying parties fetch without credentials. Plain HTTP
 * on purpose (RFC 5280 §4.2.2.1): checking revocation over TLS would need revocation data first.
 * CRLs and OCSP join it with the revocation service.
 */
export function createStatusApp(opts: StatusAppOptions): Hono {
  const app = new Hono();
  const rootsPem = encodeCertificates(opts.roots);
  app.get(CA_ISSUERS_PATH, (c) => c.body(new Uint8Array(opts.intermediate), 200, { 'content-type': 'application/pkix-cert', 'cache-control': 'public, max-age=3600' }));
  app.get('/roots.pem', (c) => c.body(rootsPem, 200, { 'content-type': 'application/x-pem-file' }));
  app.get('/health', (c) => c.json({ status: 'ok' }));
  app.notFound((c) => {
    c.header('content-type', 'application/problem+json');
    return c.body(JSON.stringify({ type: 'urn:shortleaf:problem:notFound', title: 'Not found', status: 404, detail: 'no such resource on the status listener' }), 404);
  });
  return app;
}
