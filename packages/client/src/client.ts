import { request } from 'node:https';

export interface IssuedResponse {
  serial: string;
  certificate: string;
  chain: string;
  notBefore: string;
  notAfter: string;
}

/** A problem document returned by the CA, as a throwable error with its stable type. */
export class CaProblemError extends Error {
  override readonly name = 'CaProblemError';
  constructor(
    readonly status: number,
    readonly type: string,
    readonly detail: string,
  ) {
    super(`${detail} (${type}, HTTP ${status})`);
  }
}

/** `GET /api/v1/provisioners/NAME`: a provisioner's type and, for an oidc one, how to sign in for its tokens. */
export interface ProvisionerInfoResponse {
  name: string;
  type: string;
  oidc?: { issuer: string; clientId: string; scopes: string[] };
}

export interface ClientOptions {
  caUrl: string;
  /** PEM of the roots to trust for the CA's HTTPS listener. */
  rootPem: string;
  /** Client certificate and key (PEM) for mutual-TLS calls such as renew. */
  cert?: string;
  key?: string;
  timeoutMs?: number;
}

/** A typed client for Shortleaf's REST API, used by the CLI, the agent and the tests. */
export function createClient(opts: ClientOptions) {
  const base = new URL(opts.caUrl);

  function call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(path, base),
        {
          method,
          ca: opts.rootPem,
          ...(opts.cert === undefined ? {} : { cert: opts.cert, key: opts.key }),
          headers:
            payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': payload.length },
          timeout: opts.timeoutMs ?? 15_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if (status >= 400) {
              let p: { type?: string; detail?: string } = {};
              try {
                p = JSON.parse(text) as typeof p;
              } catch {
                /* not a problem document: report the raw status */
              }
              reject(new CaProblemError(status, p.type ?? 'unknown', p.detail ?? text.slice(0, 200)));
              return;
            }
            try {
              resolve({ status, body: (res.headers['content-type']?.includes('json') ? JSON.parse(text) : text) as T });
            } catch (err) {
              reject(err as Error);
            }
          });
        },
      );
      req.on('timeout', () =>
        req.destroy(new Error(`no answer from ${base.origin} within ${opts.timeoutMs ?? 15_000} ms`)),
      );
      req.on('error', (err) => reject(explainTlsError(err, base)));
      req.end(payload);
    });
  }

  return {
    sign: async (input: { csr: string; token: string; notAfter?: string }) =>
      (await call<IssuedResponse>('POST', '/api/v1/sign', input)).body,
    renew: async (input: { csr?: string } = {}) =>
      (await call<IssuedResponse>('POST', '/api/v1/renew', input.csr === undefined ? undefined : input)).body,
    provisioner: async (name: string) =>
      (await call<ProvisionerInfoResponse>('GET', `/api/v1/provisioners/${encodeURIComponent(name)}`)).body,
    roots: async () => (await call<string>('GET', '/roots.pem')).body,
    health: async () => (await call<{ status: string }>('GET', '/health')).body,
  };
}

export type Client = ReturnType<typeof createClient>;

/**
 * Node's host-name mismatch says only "Hostname/IP does not match certificate's altnames"; the
 * user needs to know which names the CA's certificate does carry, and where to change them.
 */
function explainTlsError(err: Error & { code?: string; cert?: { subjectaltname?: string } }, base: URL): Error {
  if (err.code !== 'ERR_TLS_CERT_ALTNAME_INVALID') return err;
  const names = (err.cert?.subjectaltname ?? '')
    .split(', ')
    .map((n) => n.replace(/^(DNS|IP Address):/, ''))
    .filter((n) => n !== '');
  const message =
    `the CA's HTTPS certificate does not name ${base.hostname}` +
    (names.length > 0 ? `; it names ${names.join(', ')}: use one of those in --ca` : '') +
    ", or add the name to the CA's config (dnsNames, within the intermediate's name constraints) and restart it";
  return Object.assign(new Error(message, { cause: err }), { code: err.code });
}
