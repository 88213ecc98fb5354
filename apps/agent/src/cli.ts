import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { KEY_TYPE_NAMES, type KeyTypeName } from '@shortleaf/pki';
import type { CertificateAgentOptions } from './certificate-agent.js';
import type { Hook } from './hooks.js';
import { checkFraction } from './schedule.js';

/** A command line the agent cannot run with; the message says what to change. */
export class AgentUsageError extends Error {
  override readonly name = 'AgentUsageError';
}

export const AGENT_USAGE = `shortleaf agent: keeps a certificate current, or a CRL file fresh, with no human in the loop

Certificates (bootstrap with a token, then renew over mutual TLS; a --token-file, such as a
Kubernetes projected service-account token, is read again whenever the agent must authenticate again):
  shortleaf agent --ca URL --root FILE --cert OUT --key OUT [--chain OUT]
                  (--token T | --token-file F | --acme DIRECTORY [--http-01-addr 0.0.0.0:80]
                   [--eab-kid K (--eab-hmac-file F | env SHORTLEAF_EAB_HMAC | --eab-hmac H)] [--email E]) [--san NAME]... [--kty EC|RSA|OKP] [--not-after 8h]
                  [--renew-at 0.66] [--jitter 0.05] [--rekey] [--retry-min 2s] [--retry-max 5m]
                  [--exec 'nginx -s reload' | --signal HUP --pid-file F] [--hook-timeout 30s]
                  [--ari-url URL | --no-ari] [--health-addr 127.0.0.1:PORT] [--once [--force]]
CRL files for proxies (verified, newer only, written atomically):
  shortleaf agent crl --url URL [--root-url URL] --root FILE --out FILE.pem [--interval 60s]
                  [--exec CMD | --signal HUP --pid-file F] [--once]
`;

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `250ms`, `30s`, `5m`, `1h`, `1d`. */
export function parseDurationMs(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text);
  if (m === null)
    throw new AgentUsageError(`${what} must be a duration such as 30s, 5m or 1h, not ${JSON.stringify(text)}`);
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}

function hostPort(text: string, what: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(text);
  if (m === null || Number(m[2]) > 65535)
    throw new AgentUsageError(`${what} must be HOST:PORT, not ${JSON.stringify(text)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new AgentUsageError(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

const HOOK_OPTIONS = {
  exec: { type: 'string' },
  signal: { type: 'string' },
  'pid-file': { type: 'string' },
  'hook-timeout': { type: 'string' },
} as const;

function parseHook(values: {
  exec?: string;
  signal?: string;
  'pid-file'?: string;
  'hook-timeout'?: string;
}): Hook | null {
  if (values.exec !== undefined && values.signal !== undefined)
    throw new AgentUsageError('give --exec or --signal, not both');
  if (values.exec !== undefined)
    return {
      kind: 'exec',
      command: values.exec,
      timeoutMs: parseDurationMs(values['hook-timeout'] ?? '30s', '--hook-timeout'),
    };
  if (values.signal !== undefined) {
    const signal = (
      values.signal.startsWith('SIG') ? values.signal : `SIG${values.signal}`
    ).toUpperCase() as NodeJS.Signals;
    if (!['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGTERM', 'SIGINT', 'SIGQUIT'].includes(signal))
      throw new AgentUsageError(`--signal must be HUP, USR1, USR2, TERM, INT or QUIT, not ${values.signal}`);
    if (values['pid-file'] === undefined) throw new AgentUsageError('--signal needs --pid-file FILE');
    return { kind: 'signal', signal, pidFile: values['pid-file'] };
  }
  if (values['pid-file'] !== undefined) throw new AgentUsageError('--pid-file goes with --signal');
  return null;
}

/** The environment variable the EAB HMAC key may come from, out of sight of `ps`. */
export const EAB_HMAC_ENV = 'SHORTLEAF_EAB_HMAC';

/**
 * The EAB HMAC key (RFC 8555 §7.3.4) from --eab-hmac-file or --eab-hmac (one of them), else from
 * the environment. A file or the environment keeps it out of the command line, which every local
 * user can read in `ps`; the file is read as --token-file is (whitespace around it trimmed).
 */
function eabHmacKey(
  v: Record<string, string | boolean | string[] | undefined>,
  env: Readonly<Record<string, string | undefined>>,
): string {
  if (v['eab-hmac'] !== undefined && v['eab-hmac-file'] !== undefined)
    throw new AgentUsageError('give --eab-hmac or --eab-hmac-file, not both');
  const key =
    v['eab-hmac-file'] !== undefined
      ? readText(String(v['eab-hmac-file']), 'the EAB HMAC key file').trim()
      : v['eab-hmac'] !== undefined
        ? String(v['eab-hmac'])
        : (env[EAB_HMAC_ENV] ?? '').trim();
  if (key === '') {
    throw new AgentUsageError(
      v['eab-hmac-file'] !== undefined
        ? `the EAB HMAC key file ${String(v['eab-hmac-file'])} is empty`
        : `--eab-kid needs the HMAC key: --eab-hmac-file FILE, or ${EAB_HMAC_ENV} in the environment`,
    );
  }
  return key;
}

const KTY: Record<string, KeyTypeName> = { EC: 'EC-P256', RSA: 'RSA', OKP: 'Ed25519' };

export interface CertificateCommand {
  mode: 'certificate';
  options: CertificateAgentOptions;
  healthAddr: { host: string; port: number } | null;
  once: boolean;
  /** With --once: renew even if not due. */
  force: boolean;
  /** Secrets given on the command line, where every local user reads them in `ps`: the flags that carried them. */
  secretsOnCommandLine: string[];
}

export interface CrlCommand {
  mode: 'crl';
  urls: string[];
  rootPem: string;
  out: string;
  intervalMs: number;
  hook: Hook | null;
  once: boolean;
}

/**
 * Parses `shortleaf agent …` into what to run; every mistake is an AgentUsageError. This is the
 * agent's config module: the only place it reads `process.env` (for SHORTLEAF_EAB_HMAC), and only
 * as the default of `env`, which tests replace.
 */
export function parseAgentArgs(
  args: string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): CertificateCommand | CrlCommand {
  type Values = Record<string, string | boolean | string[] | undefined>;
  const strict = (
    argv: string[],
    options: NonNullable<Parameters<typeof parseArgs>[0]>['options'],
  ): { values: Values } => {
    try {
      return { values: parseArgs({ args: argv, options, allowPositionals: false, strict: true }).values as Values };
    } catch (err) {
      throw new AgentUsageError((err as Error).message);
    }
  };
  if (args[0] === 'crl') {
    const { values } = strict(args.slice(1), {
      url: { type: 'string', multiple: true },
      'root-url': { type: 'string' },
      root: { type: 'string' },
      out: { type: 'string' },
      interval: { type: 'string' },
      once: { type: 'boolean' },
      ...HOOK_OPTIONS,
    });
    const urls = [
      ...((values.url as string[] | undefined) ?? []),
      ...(values['root-url'] === undefined ? [] : [values['root-url'] as string]),
    ];
    if (urls.length === 0)
      throw new AgentUsageError('agent crl needs --url URL (the intermediate CRL), and usually --root-url URL');
    for (const u of urls) if (!/^https?:\/\//.test(u)) throw new AgentUsageError(`${u} is not an http(s) URL`);
    if (values.root === undefined || values.out === undefined)
      throw new AgentUsageError(
        'agent crl needs --root FILE (the CA certificates CRLs must be signed by) and --out FILE.pem',
      );
    return {
      mode: 'crl',
      urls,
      rootPem: readText(values.root as string, 'the CA certificate file'),
      out: values.out as string,
      intervalMs: parseDurationMs((values.interval as string | undefined) ?? '60s', '--interval'),
      hook: parseHook(values as Record<string, string | undefined>),
      once: values.once === true,
    };
  }
  const { values } = strict(args, {
    ca: { type: 'string' },
    root: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    chain: { type: 'string' },
    token: { type: 'string' },
    'token-file': { type: 'string' },
    san: { type: 'string', multiple: true },
    kty: { type: 'string' },
    'not-after': { type: 'string' },
    'renew-at': { type: 'string' },
    jitter: { type: 'string' },
    rekey: { type: 'boolean' },
    'retry-min': { type: 'string' },
    'retry-max': { type: 'string' },
    'ari-url': { type: 'string' },
    'no-ari': { type: 'boolean' },
    'health-addr': { type: 'string' },
    once: { type: 'boolean' },
    force: { type: 'boolean' },
    'token-poll': { type: 'string' },
    acme: { type: 'string' },
    'http-01-addr': { type: 'string' },
    'eab-kid': { type: 'string' },
    'eab-hmac': { type: 'string' },
    'eab-hmac-file': { type: 'string' },
    email: { type: 'string' },
    'acme-timeout': { type: 'string' },
    ...HOOK_OPTIONS,
  });
  const v = values as Record<string, string | boolean | string[] | undefined>;
  for (const required of ['ca', 'root', 'cert', 'key'] as const)
    if (v[required] === undefined) throw new AgentUsageError(`--${required} is required\n\n${AGENT_USAGE}`);
  if (v.token !== undefined && v['token-file'] !== undefined)
    throw new AgentUsageError('give --token or --token-file, not both');
  if (v.acme !== undefined && (v.token !== undefined || v['token-file'] !== undefined))
    throw new AgentUsageError('give --acme or a token, not both');
  if (v.acme !== undefined && !/^https:\/\//.test(String(v.acme)))
    throw new AgentUsageError('--acme must be the https:// URL of an ACME directory');
  if (v.acme !== undefined && ((v.san as string[] | undefined) ?? []).length === 0)
    throw new AgentUsageError('--acme needs --san NAME for each name to order');
  for (const flag of ['http-01-addr', 'eab-kid', 'eab-hmac', 'eab-hmac-file', 'email', 'acme-timeout'])
    if (v[flag] !== undefined && v.acme === undefined) throw new AgentUsageError(`--${flag} goes with --acme`);
  if (v['eab-kid'] === undefined && (v['eab-hmac'] !== undefined || v['eab-hmac-file'] !== undefined))
    throw new AgentUsageError('--eab-hmac and --eab-hmac-file go with --eab-kid');
  const eabHmac = v['eab-kid'] === undefined ? undefined : eabHmacKey(v, env);
  const caUrl = String(v.ca).replace(/\/+$/, '');
  if (!/^https:\/\//.test(caUrl)) throw new AgentUsageError("--ca must be the CA's https:// URL");
  const keyType = KTY[String(v.kty ?? 'EC')];
  if (keyType === undefined || !KEY_TYPE_NAMES.includes(keyType)) throw new AgentUsageError('--kty is EC, RSA or OKP');
  const fraction = (name: string, fallback: string) => {
    try {
      return checkFraction(Number(v[name] ?? fallback), `--${name}`);
    } catch (err) {
      throw new AgentUsageError((err as Error).message);
    }
  };
  const jitter = Number(v.jitter ?? '0.05');
  if (!Number.isFinite(jitter) || jitter < 0 || jitter > 0.25)
    throw new AgentUsageError('--jitter is a fraction of the lifetime between 0 and 0.25');
  if (v['ari-url'] !== undefined && v['no-ari'] === true)
    throw new AgentUsageError('give --ari-url or --no-ari, not both');
  const retryMinMs = parseDurationMs(String(v['retry-min'] ?? '2s'), '--retry-min');
  const retryMaxMs = parseDurationMs(String(v['retry-max'] ?? '5m'), '--retry-max');
  if (retryMaxMs < retryMinMs) throw new AgentUsageError('--retry-max must not be shorter than --retry-min');
  if (v.force === true && v.once !== true) throw new AgentUsageError('--force goes with --once');
  return {
    mode: 'certificate',
    options: {
      caUrl,
      rootPem: readText(String(v.root), 'the root file'),
      rootFile: String(v.root),
      paths: { cert: String(v.cert), key: String(v.key), ...(v.chain === undefined ? {} : { chain: String(v.chain) }) },
      token:
        v.token !== undefined
          ? { kind: 'value', value: String(v.token) }
          : v['token-file'] !== undefined
            ? { kind: 'file', path: String(v['token-file']) }
            : null,
      acme:
        v.acme === undefined
          ? null
          : {
              directoryUrl: String(v.acme),
              http01: hostPort(String(v['http-01-addr'] ?? '0.0.0.0:80'), '--http-01-addr'),
              eab: eabHmac === undefined ? null : { kid: String(v['eab-kid']), hmacKey: eabHmac },
              contact: v.email === undefined ? null : String(v.email),
              timeoutMs: parseDurationMs(String(v['acme-timeout'] ?? '2m'), '--acme-timeout'),
            },
      names: (v.san as string[] | undefined) ?? [],
      keyType,
      notAfter: v['not-after'] === undefined ? null : String(v['not-after']),
      rekey: v.rekey === true,
      renewAt: fraction('renew-at', '0.66'),
      jitter,
      retryMinMs,
      retryMaxMs,
      hook: parseHook(v as Record<string, string | undefined>),
      ariUrl:
        v['no-ari'] === true ? null : String(v['ari-url'] ?? `${caUrl}/acme/acme/renewal-info`).replace(/\/+$/, ''),
      tokenPollMs: parseDurationMs(String(v['token-poll'] ?? '2s'), '--token-poll'),
    },
    healthAddr: v['health-addr'] === undefined ? null : hostPort(String(v['health-addr']), '--health-addr'),
    // A token is single-use and short-lived; the EAB HMAC key is a long-lived secret.
    secretsOnCommandLine: v['eab-hmac'] === undefined ? [] : ['--eab-hmac'],
    once: v.once === true,
    force: v.force === true,
  };
}
