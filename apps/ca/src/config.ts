import { readFileSync } from 'node:fs';
import { AuthorityError, parseDuration, parseTemplates, type CertificateTemplate } from '@shortleaf/authority';
import { DEFAULT_DENY_NETWORKS, DEFAULT_VALIDATION_LIMITS } from '@shortleaf/acme';
import { parseCidr, parseIp } from '@shortleaf/pki';

/**
 * The server's configuration. Every key has a default, so `shortleaf serve` needs no file; an
 * unknown or mistyped key stops start-up with a message naming it. This module is the only one
 * that reads `process.env`.
 */
export interface ServeConfig {
  /** HTTPS listener for the API, host:port. */
  listen: string;
  /** Plain-HTTP listener for public revocation data, host:port. */
  statusListen: string;
  /** Base URL clients use for the API (token audiences derive from it). Default: https://localhost:<port>. */
  publicUrl: string | null;
  /** Base URL embedded in leaves for OCSP, CRL and caIssuers. Default: http://<statusListen>. */
  statusUrl: string | null;
  /** Extra DNS names or IPs for the CA's own HTTPS certificate and token audiences. */
  dnsNames: string[];
  /** Lifetime of the CA's own HTTPS certificate; it renews itself at two thirds. */
  serverCertificateLifetime: string;
  limits: {
    maxBodyBytes: number;
    /** Deepest JSON nesting of a REST body or an ACME payload. */
    maxJsonDepth: number;
    /** Most names one certificate may carry: SANs a token authorises, identifiers of an ACME order. */
    maxNames: number;
    /** Longest a client may take to send the request headers (slow clients are disconnected). */
    headersTimeout: string;
    /** Longest a client may take to send a whole request. */
    requestTimeout: string;
    /** Longest a client may take to finish the TLS handshake, from the moment it connects (one that sends nothing is cut off too). */
    handshakeTimeout: string;
  };
  log: { level: 'debug' | 'info' | 'warn' | 'error' };
  /** Prometheus metrics at `GET /metrics` on the status listener. */
  metrics: { enabled: boolean };
  crl: {
    /** thisUpdate → nextUpdate of the intermediate's CRL. */
    validity: string;
    /** Rebuild on schedule once the CRL is this old (well before nextUpdate). */
    refreshAfter: string;
    /** Revocations within this window share one rebuild (at most 5 s by design). */
    rebuildDelay: string;
    /** Longest Cache-Control max-age on /crl, within nextUpdate. */
    cacheMaxAge: string;
  };
  ocsp: {
    /**
     * thisUpdate → nextUpdate of an OCSP response: how long a relying party that keeps answers
     * itself (nginx's ssl_ocsp_cache, stapling servers, browsers) may go on trusting a `good`.
     */
    validity: string;
    /** Lifetime of the delegated responder certificate; it rotates at two thirds. */
    signerLifetime: string;
    /** Most pre-signed responses kept in memory. */
    cacheEntries: number;
    /** Most bytes pre-signed responses take in memory, per intermediate in service. */
    cacheBytes: number;
    /** Longest Cache-Control max-age on GET /ocsp answers, within nextUpdate; "0s": caches revalidate each time. */
    httpMaxAge: string;
  };
  rootCrl: {
    /** Warn (in /health and the log) this long before the imported root CRL's nextUpdate. */
    warnBefore: string;
  };
  intermediate: {
    /** Warn (in /health and the log) this long before the active intermediate expires. */
    warnBefore: string;
    /** Warn this long before the OCSP responder the root delegated for an intermediate expires (the ceremony re-signs it). */
    ocspSignerWarnBefore: string;
  };
  acme: {
    /** How challenges are checked; ports and resolver are settable so private networks and tests run unprivileged. */
    validation: {
      /** Port http-01 is fetched from (RFC 8555 says 80). */
      httpPort: number;
      /** Port tls-alpn-01 connects to (RFC 8737 says 443). */
      tlsPort: number;
      /** DNS server (host:port) for dns-01 TXT lookups and address lookups; null uses the system's. */
      dnsResolver: string | null;
      /** Static name → IP map consulted before DNS, e.g. {"svc1.test": "127.0.0.1"}. */
      hosts: Record<string, string>;
      /** Longest one validation may take. */
      timeout: string;
      /** CIDRs validation never connects to (after DNS and the hosts map, on every redirect). */
      denyNetworks: string[];
      /** When set, the only CIDRs validation connects to; null allows any address not denied. */
      allowNetworks: string[] | null;
      /** Validations running at once (per instance). */
      concurrency: number;
      /** Validations of one account running at once, so one account cannot hold every slot. */
      concurrencyPerAccount: number;
      /** Validations one account may have queued or running; one more is refused with rateLimited (429). */
      maxPendingPerAccount: number;
      /** Validations all accounts of one ACME provisioner may have queued or running together. */
      maxPendingPerProvisioner: number;
    };
    /** How long an order may stay unfinished. */
    orderLifetime: string;
    /** How long a valid authorization is reused for new orders of the same account. */
    authorizationLifetime: string;
  };
  /**
   * Per-provisioner certificate templates, provisioner name → template: subject fields, extended
   * key usages, URI SANs built from token claims, lifetime. Parsed here; checked against the
   * provisioners themselves once `serve` has opened the store.
   */
  templates: ReadonlyMap<string, CertificateTemplate>;
}

export const DEFAULT_CONFIG: ServeConfig = {
  listen: '127.0.0.1:9443',
  statusListen: '127.0.0.1:9080',
  publicUrl: null,
  statusUrl: null,
  dnsNames: [],
  serverCertificateLifetime: '24h',
  limits: { maxBodyBytes: 64 * 1024, maxJsonDepth: 8, maxNames: 100, headersTimeout: '10s', requestTimeout: '30s', handshakeTimeout: '10s' },
  log: { level: 'info' },
  metrics: { enabled: true },
  crl: { validity: '24h', refreshAfter: '8h', rebuildDelay: '1s', cacheMaxAge: '5m' },
  ocsp: { validity: '4h', signerLifetime: '72h', cacheEntries: 100_000, cacheBytes: 128 * 1024 * 1024, httpMaxAge: '0s' },
  rootCrl: { warnBefore: '7d' },
  intermediate: { warnBefore: '30d', ocspSignerWarnBefore: '14d' },
  acme: { validation: { httpPort: 80, tlsPort: 443, dnsResolver: null, hosts: {}, timeout: '10s', denyNetworks: [...DEFAULT_DENY_NETWORKS], allowNetworks: null, ...DEFAULT_VALIDATION_LIMITS }, orderLifetime: '24h', authorizationLifetime: '24h' },
  templates: new Map(),
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

// 'object' is any JSON object, checked by its own parser (templates).
type Shape = { [key: string]: 'boolean' | 'string' | 'string?' | 'string[]' | 'string[]?' | 'string map' | 'number' | 'level' | 'duration' | 'duration or 0' | 'object' | Shape };

function isDuration(v: unknown): boolean {
  try {
    return typeof v === 'string' && parseDuration(v) > 0;
  } catch {
    return false;
  }
}
const SHAPE: Shape = {
  listen: 'string',
  statusListen: 'string',
  publicUrl: 'string?',
  statusUrl: 'string?',
  dnsNames: 'string[]',
  serverCertificateLifetime: 'string',
  limits: { maxBodyBytes: 'number', maxJsonDepth: 'number', maxNames: 'number', headersTimeout: 'duration', requestTimeout: 'duration', handshakeTimeout: 'duration' },
  log: { level: 'level' },
  metrics: { enabled: 'boolean' },
  crl: { validity: 'duration', refreshAfter: 'duration', rebuildDelay: 'duration', cacheMaxAge: 'duration' },
  ocsp: { validity: 'duration', signerLifetime: 'duration', cacheEntries: 'number', cacheBytes: 'number', httpMaxAge: 'duration or 0' },
  rootCrl: { warnBefore: 'duration' },
  intermediate: { warnBefore: 'duration', ocspSignerWarnBefore: 'duration' },
  acme: { validation: { httpPort: 'number', tlsPort: 'number', dnsResolver: 'string?', hosts: 'string map', timeout: 'duration', denyNetworks: 'string[]', allowNetworks: 'string[]?', concurrency: 'number', concurrencyPerAccount: 'number', maxPendingPerAccount: 'number', maxPendingPerProvisioner: 'number' }, orderLifetime: 'duration', authorizationLifetime: 'duration' },
  templates: 'object',
};

function check(value: Record<string, unknown>, shape: Shape, prefix: string): void {
  for (const [key, v] of Object.entries(value)) {
    const path = `${prefix}${key}`;
    const want = shape[key];
    if (want === undefined) {
      const known = Object.keys(shape).map((k) => `${prefix}${k}`).join(', ');
      throw new ConfigError(`unknown configuration key "${path}" (known keys: ${known})`);
    }
    const ok =
      typeof want === 'object'
        ? typeof v === 'object' && v !== null && !Array.isArray(v)
        : want === 'boolean' ? typeof v === 'boolean'
        : want === 'string' ? typeof v === 'string'
        : want === 'string?' ? v === null || typeof v === 'string'
        : want === 'string[]' ? Array.isArray(v) && v.every((x) => typeof x === 'string')
        : want === 'string[]?' ? v === null || (Array.isArray(v) && v.every((x) => typeof x === 'string'))
        : want === 'string map' ? typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string')
        : want === 'number' ? typeof v === 'number' && Number.isInteger(v) && v > 0
        : want === 'duration' ? isDuration(v)
        : want === 'duration or 0' ? isDuration(v) || (typeof v === 'string' && /^(0{1,6}[smhd])+$/.test(v))
        : want === 'object' ? typeof v === 'object' && v !== null && !Array.isArray(v)
        : ['debug', 'info', 'warn', 'error'].includes(v as string);
    const expected = typeof want === 'object' || want === 'object' ? 'an object' : want === 'string map' ? 'an object of strings' : want === 'duration' ? 'a duration such as "30s", "8h" or "7d"' : want === 'duration or 0' ? 'a duration such as "0s", "5m" or "1h"' : want === 'boolean' ? 'true or false' : want;
    if (!ok) throw new ConfigError(`configuration key "${path}" has the wrong type (expected ${expected})`);
    if (typeof want === 'object') check(v as Record<string, unknown>, want, `${path}.`);
  }
}

export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  if (m === null || port > 65535) throw new ConfigError(`${what} must be HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function mergeAcme(fromFile: Partial<ServeConfig['acme']>): ServeConfig['acme'] {
  const d = DEFAULT_CONFIG.acme;
  return { ...d, ...fromFile, validation: { ...d.validation, ...(fromFile.validation ?? {}) } };
}

function loadTemplates(doc: unknown): ReadonlyMap<string, CertificateTemplate> {
  try {
    return parseTemplates(doc);
  } catch (err) {
    if (err instanceof AuthorityError) throw new ConfigError(err.message);
    throw err;
  }
}

/** Loads the JSON file (if any), applies command-line overrides, and validates every value. */
export function loadConfig(file: string | undefined, overrides: Partial<Pick<ServeConfig, 'listen' | 'statusListen'>>): ServeConfig {
  let fromFile: Record<string, unknown> = {};
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read the configuration file ${file}: ${(err as Error).message}`);
    }
    try {
      fromFile = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`the configuration file ${file} is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile)) throw new ConfigError(`the configuration file ${file} must hold a JSON object`);
    check(fromFile, SHAPE, '');
  }
  const merged: ServeConfig = {
    ...DEFAULT_CONFIG,
    ...(fromFile as Partial<ServeConfig>),
    limits: { ...DEFAULT_CONFIG.limits, ...((fromFile.limits as object | undefined) ?? {}) },
    log: { ...DEFAULT_CONFIG.log, ...((fromFile.log as object | undefined) ?? {}) },
    metrics: { ...DEFAULT_CONFIG.metrics, ...((fromFile.metrics as object | undefined) ?? {}) },
    crl: { ...DEFAULT_CONFIG.crl, ...((fromFile.crl as object | undefined) ?? {}) },
    ocsp: { ...DEFAULT_CONFIG.ocsp, ...((fromFile.ocsp as object | undefined) ?? {}) },
    rootCrl: { ...DEFAULT_CONFIG.rootCrl, ...((fromFile.rootCrl as object | undefined) ?? {}) },
    intermediate: { ...DEFAULT_CONFIG.intermediate, ...((fromFile.intermediate as object | undefined) ?? {}) },
    acme: mergeAcme((fromFile.acme as Partial<ServeConfig['acme']> | undefined) ?? {}),
    templates: loadTemplates(fromFile.templates),
    ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)),
  };
  parseHostPort(merged.listen, 'listen');
  parseHostPort(merged.statusListen, 'statusListen');
  for (const [key, url] of [['publicUrl', merged.publicUrl], ['statusUrl', merged.statusUrl]] as const) {
    if (url !== null && !/^https?:\/\/[^/]+$/.test(url.replace(/\/$/, ''))) throw new ConfigError(`${key} must be a base URL such as https://ca.example:9443 (no path)`);
  }
  if (merged.statusUrl !== null && !merged.statusUrl.startsWith('http://')) {
    throw new ConfigError('statusUrl must be plain http:// (relying parties fetch revocation data without TLS)');
  }
  try {
    parseDuration(merged.serverCertificateLifetime);
  } catch (err) {
    throw new ConfigError(`serverCertificateLifetime: ${(err as Error).message}`);
  }
  if (parseDuration(merged.crl.rebuildDelay) > 5_000) throw new ConfigError('crl.rebuildDelay is at most 5s: a revocation must reach the CRL within seconds');
  if (parseDuration(merged.crl.refreshAfter) >= parseDuration(merged.crl.validity)) throw new ConfigError('crl.refreshAfter must be shorter than crl.validity');
  for (const [key, port] of [['httpPort', merged.acme.validation.httpPort], ['tlsPort', merged.acme.validation.tlsPort]] as const) {
    if (port > 65535) throw new ConfigError(`acme.validation.${key} must be a TCP port (1-65535)`);
  }
  if (merged.acme.validation.dnsResolver !== null) parseHostPort(merged.acme.validation.dnsResolver, 'acme.validation.dnsResolver');
  if (merged.acme.validation.concurrencyPerAccount > merged.acme.validation.concurrency) throw new ConfigError('acme.validation.concurrencyPerAccount must not exceed acme.validation.concurrency');
  for (const key of ['denyNetworks', 'allowNetworks'] as const) {
    const bad = (merged.acme.validation[key] ?? []).find((cidr) => parseCidr(cidr) === null);
    if (bad !== undefined) throw new ConfigError(`acme.validation.${key}: ${JSON.stringify(bad)} is not an IP network such as 10.0.0.0/8 or fd00::/8`);
  }
  if (parseDuration(merged.limits.headersTimeout) > parseDuration(merged.limits.requestTimeout)) throw new ConfigError('limits.headersTimeout must not be longer than limits.requestTimeout');
  for (const [name, ip] of Object.entries(merged.acme.validation.hosts)) {
    if (parseIp(ip) === null) throw new ConfigError(`acme.validation.hosts: ${JSON.stringify(name)} must map to an IP address, not ${JSON.stringify(ip)}`);
  }
  if (parseDuration(merged.ocsp.validity) >= parseDuration(merged.ocsp.signerLifetime)) throw new ConfigError('ocsp.validity must be shorter than ocsp.signerLifetime');
  if (parseDuration(merged.ocsp.httpMaxAge) > parseDuration(merged.ocsp.validity)) throw new ConfigError('ocsp.httpMaxAge must not be longer than ocsp.validity');
  return merged;
}

/** Secrets that come from the environment, never from the config file. */
export function envSecrets(): { password: string | undefined; rootPassword: string | undefined } {
  return { password: process.env.SHORTLEAF_PASSWORD || undefined, rootPassword: process.env.SHORTLEAF_ROOT_PASSWORD || undefined };
}
