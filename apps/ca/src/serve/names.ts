import type { LoadedIssuer, Logger } from '@shortleaf/authority';
import { parseName, readRevocationPointers, withinConstraints } from '@shortleaf/pki';
import type { ServeConfig } from '../config.js';

/** A host as it goes into a URL: IPv6 literals in brackets. */
export const urlHost = (host: string): string => (host.includes(':') ? `[${host}]` : host);

/**
 * Names the CA's HTTPS certificate carries and token audiences accept. Names outside the
 * intermediate's own name constraints are left out (verifiers would refuse the certificate), so a
 * constrained intermediate serves without `localhost`; configure `dnsNames` inside the constraints.
 */
export function serverNames(
  config: Pick<ServeConfig, 'dnsNames' | 'publicUrl'>,
  listenHost: string,
  issuer: LoadedIssuer,
  logger: Logger,
): string[] {
  const wanted = new Set(['localhost', '127.0.0.1', '::1', ...config.dnsNames]);
  if (listenHost !== '0.0.0.0' && listenHost !== '::') wanted.add(listenHost);
  if (config.publicUrl !== null) wanted.add(new URL(config.publicUrl).hostname.replace(/^\[|\]$/g, ''));
  const { permittedDns, permittedUri, permittedEmail } = issuer.certificate;
  const names = [...wanted].filter((n) => withinConstraints(parseName(n), permittedDns, permittedUri, permittedEmail));
  const dropped = [...wanted].filter((n) => !names.includes(n));
  if (dropped.length > 0)
    logger.warn('server_names_outside_constraints', {
      dropped,
      permittedDns,
      note: 'the intermediate is name-constrained; these names are left out of the HTTPS certificate',
    });
  return names;
}

/**
 * The URL the banner tells clients to use when `publicUrl` is not set: a name the HTTPS
 * certificate really carries, `localhost` when it can. A name-constrained intermediate leaves
 * `localhost` out, and a banner naming it would send every client into a host-name mismatch.
 */
export function defaultPublicUrl(names: readonly string[], port: number): string {
  const host = names.includes('localhost')
    ? 'localhost'
    : (names.find((n) => parseName(n).kind === 'dns') ?? names[0] ?? 'localhost');
  return `https://${urlHost(host)}${port === 443 ? '' : `:${port}`}`;
}

/** Base URL leaves embed for OCSP, CRLs and caIssuers: `statusUrl`, or the status listener's own address. */
export function statusBaseUrl(statusUrl: string | null, statusAddr: { host: string }, statusPort: number): string {
  return (
    statusUrl ?? `http://${urlHost(statusAddr.host === '0.0.0.0' ? '127.0.0.1' : statusAddr.host)}:${statusPort}`
  ).replace(/\/+$/, '');
}

/** Accepted token `aud` values for `path`: the path under every name and the public URL this server answers to. */
export function audiences(publicUrl: string | null, names: string[], port: number, path: string): string[] {
  const bases = new Set(names.map((n) => `https://${urlHost(n)}:${port}`));
  if (port === 443) for (const n of names) bases.add(`https://${urlHost(n)}`);
  if (publicUrl !== null) bases.add(publicUrl.replace(/\/+$/, ''));
  return [...bases].map((b) => `${b}${path}`);
}

/**
 * An intermediate signed with a `--status-url` other than this server's `statusUrl` sends
 * verifiers that check the whole chain somewhere this server does not answer: say so at start.
 */
export function checkIntermediateUrls(issuer: LoadedIssuer, statusBase: string, logger: Logger): void {
  const p = readRevocationPointers(issuer.certificate.der);
  const elsewhere = [...p.ocsp, ...p.caIssuers, ...p.crl].filter((u) => !u.startsWith(`${statusBase}/`));
  if (elsewhere.length > 0) {
    logger.warn('intermediate_urls_elsewhere', {
      issuer: issuer.name,
      urls: elsewhere,
      statusUrl: statusBase,
      note: "the intermediate was signed with another --status-url than this server's statusUrl; verifiers that follow its URLs will not reach this server",
    });
  }
}
