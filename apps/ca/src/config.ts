import { readFileSync } from 'node:fs';
import { parseDuration } from '@shortleaf/authority';

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
  limits: { maxBodyBytes: number };
  log: { level: 'debug' | 'info' | 'warn' | 'error' };
}

export const DEFAULT_CONFIG: ServeConfig = {
  listen: '127.0.0.1:9443',
  statusListen: '127.0.0.1:9080',
  publicUrl: null,
  statusUrl: null,
  dnsNames: [],
  serverCertificateLifetime: '24h',
  limits: { maxBodyBytes: 64 * 1024 },
  log: { level: 'info' },
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Shape = { [key: string]: 'string' | 'string?' | 'string[]' | 'number' | 'level' | Shape };
const SHAPE: Shape = {
  listen: 'string',
  statusListen: 'string',
  publicUrl: 'string?',
  statusUrl: 'string?',
  dnsNames: 'string[]',
  serverCertificateLifetime: 'string',
  limits: { maxBodyBytes: 'number' },
  log: { level: 'level' },
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
        : want === 'string' ? typeof v === 'string'
        : want === 'string?' ? v === null || typeof v === 'string'
        : want === 'string[]' ? Array.isArray(v) && v.every((x) => typeof x === 'string')
        : want === 'number' ? typeof v === 'number' && Number.isInteger(v) && v > 0
        : ['debug', 'info', 'warn', 'error'].includes(v as string);
    if (!ok) throw new ConfigError(`configuration key "${path}" has the wrong type (expected ${typeof want === 'object' ? 'an object' : want})`);
    if (typeof want === 'object') check(v as Record<string, unknown>, want, `${path}.`);
  }
}

export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  if (m === null || port > 65535) throw new ConfigError(`${what} must be HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
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
  return merged;
}

/** Secrets that come from the environment, never from the config file. */
export function envSecrets(): { password: string | undefined; rootPassword: string | undefined } {
  return { password: process.env.SHORTLEAF_PASSWORD || undefined, rootPassword: process.env.SHORTLEAF_ROOT_PASSWORD || undefined };
}
