import { readFileSync } from 'node:fs';
import { AuthorityError, parseTemplates, type CertificateTemplate } from '@shortleaf/authority';
import { DEFAULT_DENY_NETWORKS, DEFAULT_VALIDATION_LIMITS } from '@shortleaf/acme';
import { parseCidr, parseIp } from '@shortleaf/pki';
import { checkTypes, ConfigError, describeSchema, field, loadSchema, type Loaded } from './config-schema.js';
import { databaseUrlProblem } from './database-url.js';
import type { Operator } from './admin/operator.js';

export { ConfigError } from './config-schema.js';

function loadTemplates(doc: unknown): ReadonlyMap<string, CertificateTemplate> {
  try {
    return parseTemplates(doc);
  } catch (err) {
    if (err instanceof AuthorityError) throw new ConfigError(err.message);
    throw err;
  }
}

/**
 * The server's configuration, written once: each key's kind, default (as written in the file) and
 * doc. Every key has a default, so `shortleaf serve` needs no file; an unknown or mistyped key stops
 * start-up with a message naming it. Durations load as milliseconds.
 */
const SCHEMA = {
  listen: field.string('127.0.0.1:9443', 'HTTPS listener for the API, host:port.'),
  statusListen: field.string('127.0.0.1:9080', 'Plain-HTTP listener for public revocation data, host:port.'),
  publicUrl: field.optionalString(
    'Base URL clients use for the API (token audiences derive from it). Default: https://localhost:<port>.',
  ),
  statusUrl: field.optionalString(
    'Base URL embedded in leaves for OCSP, CRL and caIssuers. Default: http://<statusListen>.',
  ),
  dnsNames: field.strings([], "Extra DNS names or IPs for the CA's own HTTPS certificate and token audiences."),
  serverCertificateLifetime: field.lifetime(
    '24h',
    "Lifetime of the CA's own HTTPS certificate; it renews itself at two thirds.",
  ),
  limits: {
    maxBodyBytes: field.count(64 * 1024, 'Largest request body, in bytes.'),
    maxJsonDepth: field.count(8, 'Deepest JSON nesting of a REST body or an ACME payload.'),
    maxNames: field.count(
      100,
      'Most names one certificate may carry: SANs a token authorises, identifiers of an ACME order.',
    ),
    headersTimeout: field.duration(
      '10s',
      'Longest a client may take to send the request headers (slow clients are disconnected).',
    ),
    requestTimeout: field.duration('30s', 'Longest a client may take to send a whole request.'),
    handshakeTimeout: field.duration(
      '10s',
      'Longest a client may take to finish the TLS handshake, from the moment it connects (one that sends nothing is cut off too).',
    ),
  },
  database: {
    url: field.optionalString(
      "PostgreSQL URL (postgres://…) the CA's state lives in, shared by any number of instances; null keeps it in SQLite under --data. --database and SHORTLEAF_DATABASE_URL come first; keep a password out of the file (a ~/.pgpass or PGPASSWORD works).",
    ),
  },
  log: { level: field.level('info', 'Least severe level written to the log.') },
  metrics: { enabled: field.boolean(true, 'Prometheus metrics at `GET /metrics` on the status listener.') },
  crl: {
    validity: field.duration('24h', "thisUpdate → nextUpdate of the intermediate's CRL."),
    refreshAfter: field.duration('8h', 'Rebuild on schedule once the CRL is this old (well before nextUpdate).'),
    rebuildDelay: field.duration('1s', 'Revocations within this window share one rebuild (at most 5 s by design).'),
    cacheMaxAge: field.duration('5m', 'Longest Cache-Control max-age on /crl, within nextUpdate.'),
  },
  ocsp: {
    validity: field.duration(
      '4h',
      "thisUpdate → nextUpdate of an OCSP response: how long a relying party that keeps answers itself (nginx's ssl_ocsp_cache, stapling servers, browsers) may go on trusting a `good`.",
    ),
    signerLifetime: field.duration('72h', 'Lifetime of the delegated responder certificate; it rotates at two thirds.'),
    cacheEntries: field.count(100_000, 'Most pre-signed responses kept in memory.'),
    cacheBytes: field.count(
      128 * 1024 * 1024,
      'Most bytes pre-signed responses take in memory, per intermediate in service.',
    ),
    httpMaxAge: field.durationOrZero(
      '0s',
      'Longest Cache-Control max-age on GET /ocsp answers, within nextUpdate; "0s": caches revalidate each time.',
    ),
  },
  rootCrl: {
    warnBefore: field.duration(
      '7d',
      "Warn (in /health and the log) this long before the imported root CRL's nextUpdate.",
    ),
  },
  intermediate: {
    warnBefore: field.duration(
      '30d',
      'Warn (in /health and the log) this long before the active intermediate expires.',
    ),
    ocspSignerWarnBefore: field.duration(
      '14d',
      'Warn this long before the OCSP responder the root delegated for an intermediate expires (the ceremony re-signs it).',
    ),
  },
  acme: {
    // How challenges are checked; ports and resolver are settable so private networks and tests run unprivileged.
    validation: {
      httpPort: field.count(80, 'Port http-01 is fetched from (RFC 8555 says 80).'),
      tlsPort: field.count(443, 'Port tls-alpn-01 connects to (RFC 8737 says 443).'),
      dnsResolver: field.optionalString(
        "DNS server (host:port) for dns-01 TXT lookups and address lookups; null uses the system's.",
      ),
      hosts: field.stringMap('Static name → IP map consulted before DNS, e.g. {"svc1.test": "127.0.0.1"}.'),
      timeout: field.duration('10s', 'Longest one validation may take.'),
      denyNetworks: field.strings(
        DEFAULT_DENY_NETWORKS,
        'CIDRs validation never connects to (after DNS and the hosts map, on every redirect).',
      ),
      allowNetworks: field.optionalStrings(
        'When set, the only CIDRs validation connects to; null allows any address not denied.',
      ),
      concurrency: field.count(DEFAULT_VALIDATION_LIMITS.concurrency, 'Validations running at once (per instance).'),
      concurrencyPerAccount: field.count(
        DEFAULT_VALIDATION_LIMITS.concurrencyPerAccount,
        'Validations of one account running at once, so one account cannot hold every slot.',
      ),
      maxPendingPerAccount: field.count(
        DEFAULT_VALIDATION_LIMITS.maxPendingPerAccount,
        'Validations one account may have queued or running; one more is refused with rateLimited (429).',
      ),
      maxPendingPerProvisioner: field.count(
        DEFAULT_VALIDATION_LIMITS.maxPendingPerProvisioner,
        'Validations all accounts of one ACME provisioner may have queued or running together.',
      ),
    },
    orderLifetime: field.duration('24h', 'How long an order may stay unfinished.'),
    authorizationLifetime: field.duration(
      '24h',
      'How long a valid authorization is reused for new orders of the same account.',
    ),
  },
  templates: field.object(
    'Per-provisioner certificate templates, provisioner name → template: subject fields, extended key usages, URI SANs built from token claims, lifetime. Parsed here; checked against the provisioners themselves once `serve` has opened the store.',
    loadTemplates,
  ),
};

/** The loaded configuration: the schema's keys, durations in milliseconds. */
export type ServeConfig = Loaded<typeof SCHEMA>;

/** Every key with its expected value, default (as written in the file) and doc, for documentation. */
export const CONFIG_REFERENCE = describeSchema(SCHEMA);

/** Splits `HOST:PORT` (an IPv6 host in brackets); `what` names the key or flag in the message. */
export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  if (m === null || port > 65535) throw new ConfigError(`${what} must be HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function readFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read the configuration file ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`the configuration file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new ConfigError(`the configuration file ${file} must hold a JSON object`);
  return doc as Record<string, unknown>;
}

/** Rules that span keys or look inside a value, checked once every key has loaded. */
function checkRules(c: ServeConfig): void {
  const databaseProblem = c.database.url === null ? null : databaseUrlProblem(c.database.url, 'database.url');
  if (databaseProblem !== null) throw new ConfigError(databaseProblem);
  parseHostPort(c.listen, 'listen');
  parseHostPort(c.statusListen, 'statusListen');
  for (const [key, url] of [
    ['publicUrl', c.publicUrl],
    ['statusUrl', c.statusUrl],
  ] as const) {
    if (url !== null && !/^https?:\/\/[^/]+$/.test(url.replace(/\/$/, '')))
      throw new ConfigError(`${key} must be a base URL such as https://ca.example:9443 (no path)`);
  }
  if (c.statusUrl !== null && !c.statusUrl.startsWith('http://')) {
    throw new ConfigError('statusUrl must be plain http:// (relying parties fetch revocation data without TLS)');
  }
  if (c.crl.rebuildDelay > 5_000)
    throw new ConfigError('crl.rebuildDelay is at most 5s: a revocation must reach the CRL within seconds');
  if (c.crl.refreshAfter >= c.crl.validity) throw new ConfigError('crl.refreshAfter must be shorter than crl.validity');
  const v = c.acme.validation;
  for (const [key, port] of [
    ['httpPort', v.httpPort],
    ['tlsPort', v.tlsPort],
  ] as const) {
    if (port > 65535) throw new ConfigError(`acme.validation.${key} must be a TCP port (1-65535)`);
  }
  if (v.dnsResolver !== null) parseHostPort(v.dnsResolver, 'acme.validation.dnsResolver');
  if (v.concurrencyPerAccount > v.concurrency)
    throw new ConfigError('acme.validation.concurrencyPerAccount must not exceed acme.validation.concurrency');
  for (const key of ['denyNetworks', 'allowNetworks'] as const) {
    const bad = (v[key] ?? []).find((cidr) => parseCidr(cidr) === null);
    if (bad !== undefined)
      throw new ConfigError(
        `acme.validation.${key}: ${JSON.stringify(bad)} is not an IP network such as 10.0.0.0/8 or fd00::/8`,
      );
  }
  if (c.limits.headersTimeout > c.limits.requestTimeout)
    throw new ConfigError('limits.headersTimeout must not be longer than limits.requestTimeout');
  for (const [name, ip] of Object.entries(v.hosts)) {
    if (parseIp(ip) === null)
      throw new ConfigError(
        `acme.validation.hosts: ${JSON.stringify(name)} must map to an IP address, not ${JSON.stringify(ip)}`,
      );
  }
  if (c.ocsp.validity >= c.ocsp.signerLifetime)
    throw new ConfigError('ocsp.validity must be shorter than ocsp.signerLifetime');
  if (c.ocsp.httpMaxAge > c.ocsp.validity)
    throw new ConfigError('ocsp.httpMaxAge must not be longer than ocsp.validity');
}

/**
 * Loads the JSON file (if any), applies command-line overrides, and validates every value: first
 * the type of every key in the file, then each key's value, then the rules between keys.
 */
export function loadConfig(
  file: string | undefined,
  overrides: { listen?: string | undefined; statusListen?: string | undefined },
): ServeConfig {
  const fromFile = file === undefined ? {} : readFile(file);
  checkTypes(fromFile, SCHEMA);
  const doc = { ...fromFile, ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) };
  const config = loadSchema(SCHEMA, doc);
  checkRules(config);
  return config;
}

/** The configuration `shortleaf serve` runs with when given no file: for CLI commands that share a default with it. */
export function defaultConfig(): ServeConfig {
  return loadConfig(undefined, {});
}

// The CA's environment is read here and nowhere else (STYLE.md: only an app's config module reads
// `process.env`), so what the CA takes from it is listed in one place.

/** Secrets that come from the environment, never from the config file. */
export function envSecrets(): { password: string | undefined; rootPassword: string | undefined } {
  return {
    password: process.env.SHORTLEAF_PASSWORD || undefined,
    rootPassword: process.env.SHORTLEAF_ROOT_PASSWORD || undefined,
  };
}

/** SHORTLEAF_DATABASE_URL: where the CA's state lives when no --database flag says (the flag wins, then this, then `database.url`). */
export function envDatabaseUrl(): string | undefined {
  return process.env.SHORTLEAF_DATABASE_URL || undefined;
}

/** Who ran a CLI admin action: the login name (`cli` without USER); the audit log says `operator:<name>`. */
export function cliOperator(): Operator {
  return { kind: 'operator', name: process.env.USER ?? 'cli' };
}

/** SHORTLEAF_DEBUG: a failed command also prints its stack trace. */
export function debugStackTraces(): boolean {
  return Boolean(process.env.SHORTLEAF_DEBUG);
}

/**
 * INIT_CWD: `pnpm shortleaf` runs scripts in the repository root, and INIT_CWD is where the user
 * typed it, so relative paths (--out, --data) mean what they mean there. Undefined when unset or empty.
 */
export function invocationDirectory(): string | undefined {
  return process.env.INIT_CWD || undefined;
}
