import { readFileSync } from 'node:fs';
import { CaProblemError, createClient, problemCode, type IssuedResponse } from '@shortleaf/client';
import {
  createCsr,
  csrToPem,
  generateKeyPair,
  parseName,
  readCertificates,
  type CertificateInfo,
  type KeyTypeName,
} from '@shortleaf/pki';
import { acmeBootstrap, type AcmeBootstrapOptions } from './acme-bootstrap.js';
import { certId, fetchRenewalWindow } from './ari.js';
import {
  readCredentials,
  recoverCredentials,
  writeCredentials,
  type CredentialPaths,
  type Credentials,
} from './credential-files.js';
import type { AgentStatus } from './health.js';
import { runHook, type Hook } from './hooks.js';
import type { AgentLogger } from './log.js';
import { backoffDelay, renewalTime, timeInWindow } from './schedule.js';
import { readTokenFile, tokenFileStamp, type TokenFileReading } from './token-file.js';

export type TokenSource = { kind: 'value'; value: string } | { kind: 'file'; path: string };

export interface CertificateAgentOptions {
  caUrl: string;
  /** The roots the CA's HTTPS listener must chain to (one or several, e.g. during a root rollover). */
  rootPem: string;
  /**
   * The file `rootPem` came from: read again before each call to the CA, so a root added to it
   * (a root rollover) is trusted without restarting the agent. An unreadable file keeps the last roots.
   */
  rootFile?: string;
  paths: CredentialPaths;
  /**
   * The token for the first certificate. A file is read again each time the agent must
   * authenticate (after a revocation, an expiry, a lineage that aged out), as its owner replaces
   * it: a kubelet rotates a projected service-account token, tooling renames a new one-time token over it.
   */
  token: TokenSource | null;
  /** Instead of a token, get the first certificate (and any after expiry) over ACME. */
  acme: Omit<AcmeBootstrapOptions, 'rootPem' | 'names' | 'keyType'> | null;
  /** Names for the bootstrap CSR; the token decides what the certificate may carry. */
  names: string[];
  keyType: KeyTypeName;
  /** Requested lifetime of the first certificate (`8h`, RFC 3339); renewals keep their length. */
  notAfter: string | null;
  /** A new key at each renewal; otherwise the key stays and only the certificate changes. */
  rekey: boolean;
  renewAt: number;
  jitter: number;
  retryMinMs: number;
  retryMaxMs: number;
  hook: Hook | null;
  /** Base URL of the CA's renewalInfo (RFC 9773), or null to use only the local schedule. */
  ariUrl: string | null;
  /** How often a `--token-file` is looked at while waiting for a new token. */
  tokenPollMs: number;
}

export interface AgentDeps {
  logger: AgentLogger;
  now(): Date;
  random(): number;
  /** Resolves after `ms`, or early (false) when the agent is stopping. */
  sleep(ms: number): Promise<boolean>;
}

/** The agent stops and the process exits with `code` (2: a new token is needed). */
export class AgentExit extends Error {
  override readonly name = 'AgentExit';
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Refusals that renewing again cannot fix: only a new token can. */
const NEEDS_NEW_TOKEN = new Set([
  'certificateRevoked',
  'certificateUnknown',
  'certificateExpired',
  'clientCertificateRequired',
  'keyBlocked',
]);
/**
 * Refusals that ask the holder to present its original kind of credential again: the lineage is
 * older than the provisioner's maxLineageAge, or its certificates do not renew over mutual TLS.
 * The certificate is still valid, so the agent bootstraps again at once with what it has (an
 * ACME account, the token file as it is now) before waiting for a new token.
 */
const REAUTHENTICATE = new Set(['lineageExpired', 'renewalNotAllowed']);
const codeOf = (err: unknown): string | null => (err instanceof CaProblemError ? problemCode(err.type) : null);
/** A 4xx other than 408 and 429 will not change by retrying the same request. */
const isRefusal = (err: unknown): boolean =>
  err instanceof CaProblemError && err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429;
const describe = (err: unknown): string =>
  err instanceof CaProblemError ? `${err.detail} (${codeOf(err)})` : (err as Error).message;

/**
 * Keeps a key and certificate current with no human in the loop: the first certificate from a
 * token (one-time, or a pod's service-account token from a file), then renewal over mutual TLS
 * with the current certificate, at two-thirds of its life (or in the window the CA's renewalInfo
 * suggests), with backoff on failure. The files stay in place while the certificate is valid;
 * once it expired or was revoked, only a token helps: a `--token-file` is read again and tried as
 * it is now, a spent `--token` ends the agent with exit code 2.
 */
export function createCertificateAgent(opts: CertificateAgentOptions, deps: AgentDeps) {
  const { logger } = deps;
  const status: AgentStatus = {
    subject: null,
    serial: null,
    notBefore: null,
    notAfter: null,
    nextRenewal: null,
    lastRenewal: null,
    lastError: null,
    failures: 0,
  };
  let current: { creds: Credentials; leaf: CertificateInfo } | null = null;
  let roots = opts.rootPem;

  /** The roots to trust now: the root file as it is, or the last good reading of it. */
  function trust(): string {
    if (opts.rootFile === undefined) return roots;
    try {
      const text = readFileSync(opts.rootFile, 'utf8');
      if (text === roots) return roots;
      const count = readCertificates(text).length;
      if (count === 0) throw new Error('it holds no certificate');
      logger.info('roots_reloaded', { file: opts.rootFile, certificates: count });
      roots = text;
    } catch (err) {
      logger.warn('root_file_unreadable', {
        file: opts.rootFile,
        error: (err as Error).message,
        note: 'the roots read before are still trusted',
      });
    }
    return roots;
  }

  function adopt(creds: Credentials): void {
    const leaf = readCertificates(creds.certPem)[0];
    if (leaf === undefined) throw new Error(`${opts.paths.cert} holds no certificate`);
    current = { creds, leaf };
    status.subject = leaf.commonName ?? leaf.names.map((n) => n.value).join(', ');
    status.serial = leaf.serial;
    status.notBefore = leaf.notBefore;
    status.notAfter = leaf.notAfter;
  }

  /** The token to authenticate with now: `--token`, or the token file as it is at this moment. */
  function readToken(): TokenFileReading {
    if (opts.token === null) return { error: 'there is no certificate yet and no --token or --token-file' };
    if (opts.token.kind === 'value') return { token: opts.token.value };
    return readTokenFile(opts.token.path);
  }

  const tokenStamp = (): string => (opts.token?.kind === 'file' ? tokenFileStamp(opts.token.path) : '');

  /** Sleeps `ms`, cut short when the token file changes from `seen`; false once stopping. */
  async function sleepUnlessTokenChanges(ms: number, seen: string): Promise<boolean> {
    const until = deps.now().getTime() + ms;
    for (let left = ms; left > 0 && tokenStamp() === seen; left = until - deps.now().getTime())
      if (!(await deps.sleep(Math.min(left, opts.tokenPollMs)))) return false;
    return true;
  }

  /** Records a new certificate (already adopted) and runs the hook. */
  async function afterWrite(event: 'bootstrapped' | 'renewed'): Promise<void> {
    status.lastRenewal = deps.now();
    status.failures = 0;
    status.lastError = null;
    logger.info(event, {
      serial: current!.leaf.serial,
      notAfter: current!.leaf.notAfter.toISOString(),
      cert: opts.paths.cert,
    });
    if (opts.hook === null) return;
    const outcome = await runHook(opts.hook);
    (outcome.ok ? logger.info : logger.error)(outcome.ok ? 'hook_succeeded' : 'hook_failed', {
      hook: opts.hook.kind,
      detail: outcome.detail,
    });
  }

  /** Gets a first certificate with the token: a fresh key and CSR made here; the key never leaves. */
  async function bootstrap(token: string): Promise<void> {
    const { privateKey } = generateKeyPair(opts.keyType);
    const names = opts.names.map((n) => parseName(n));
    const csr = csrToPem(createCsr(privateKey, { commonName: null }, names));
    const client = createClient({ caUrl: opts.caUrl, rootPem: trust() });
    const issued = await client.sign({ csr, token, ...(opts.notAfter === null ? {} : { notAfter: opts.notAfter }) });
    const creds: Credentials = {
      certPem: issued.certificate + issued.chain,
      chainPem: issued.chain,
      keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
    };
    writeCredentials(opts.paths, creds);
    adopt(creds);
    await afterWrite('bootstrapped');
  }

  /** The ACME account key lives beside the certificate key, so every order is the same account's. */
  const acmeAccountKeyFile = (): string => `${opts.paths.key}.acme-account`;

  /** Gets a first certificate over ACME (http-01 answered by the agent, EAB when configured). */
  async function bootstrapOverAcme(): Promise<void> {
    const creds = await acmeBootstrap({
      ...opts.acme!,
      rootPem: trust(),
      names: opts.names,
      keyType: opts.keyType,
      accountKeyFile: acmeAccountKeyFile(),
    });
    writeCredentials(opts.paths, creds);
    adopt(creds);
    await afterWrite('bootstrapped');
  }

  /**
   * Renews over mutual TLS with the current certificate; with `rekey`, under a new key. An agent
   * that bootstraps over ACME renews over ACME (a new order, its authorizations checked again),
   * since the CA does not renew ACME certificates over mutual TLS by default.
   */
  async function renew(): Promise<void> {
    const { creds } = current!;
    if (opts.acme !== null) {
      const next = await acmeBootstrap({
        ...opts.acme,
        rootPem: trust(),
        names: opts.names,
        keyType: opts.keyType,
        accountKeyFile: acmeAccountKeyFile(),
        ...(opts.rekey ? {} : { keyPem: creds.keyPem }),
      });
      writeCredentials(opts.paths, next);
      adopt(next);
      await afterWrite('renewed');
      return;
    }
    const client = createClient({ caUrl: opts.caUrl, rootPem: trust(), cert: creds.certPem, key: creds.keyPem });
    let keyPem = creds.keyPem;
    let issued: IssuedResponse;
    if (opts.rekey) {
      const { privateKey } = generateKeyPair(opts.keyType);
      keyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
      issued = await client.renew({ csr: csrToPem(createCsr(privateKey, { commonName: null }, [])) });
    } else {
      issued = await client.renew();
    }
    const next: Credentials = { certPem: issued.certificate + issued.chain, chainPem: issued.chain, keyPem };
    writeCredentials(opts.paths, next);
    adopt(next);
    await afterWrite('renewed');
  }

  /** When to renew the current certificate: in the CA's ARI window if it offers one. */
  async function scheduleNext(): Promise<Date> {
    const leaf = current!.leaf;
    const id = opts.ariUrl === null ? null : certId(leaf);
    const window = id === null ? null : await fetchRenewalWindow(`${opts.ariUrl}/${id}`, roots);
    const at =
      window === null
        ? renewalTime(leaf, { renewAt: opts.renewAt, jitter: opts.jitter, random: deps.random })
        : timeInWindow(window, deps.now(), deps.random);
    status.nextRenewal = at;
    logger.info('renewal_scheduled', {
      serial: leaf.serial,
      at: at.toISOString(),
      source: window === null ? 'schedule' : 'renewalInfo',
      notAfter: leaf.notAfter.toISOString(),
    });
    return at;
  }

  /**
   * Only a new token helps now. With `--token-file`, waits for the file to change and starts
   * over with it; otherwise stops with exit code 2 and says so.
   */
  async function awaitNewToken(reason: string, seen = tokenStamp()): Promise<boolean> {
    if (opts.acme !== null) {
      logger.warn('bootstrapping_again', { reason, via: 'acme' });
      return true;
    }
    if (opts.token?.kind !== 'file') {
      logger.error('new_token_needed', {
        reason,
        note: 'the certificate cannot be renewed; restart the agent with a new --token (or use --token-file)',
      });
      throw new AgentExit(2, `${reason}; a new token is needed`);
    }
    logger.error('waiting_for_new_token', { reason, tokenFile: opts.token.path });
    while (tokenStamp() === seen) if (!(await deps.sleep(opts.tokenPollMs))) return false;
    return true;
  }

  const retryDelay = (attempt: number): number =>
    backoffDelay(attempt, { minMs: opts.retryMinMs, maxMs: opts.retryMaxMs, random: deps.random });

  function recordFailure(err: unknown): string {
    status.failures++;
    status.lastError = describe(err);
    return status.lastError;
  }

  /**
   * Bootstraps, retrying transient failures. A token file that is missing, unreadable or empty
   * is retried with backoff (sooner once it changes); a refused token waits for a new one (or
   * exits). `why` says what made the agent authenticate again, for the log.
   */
  async function bootstrapWithRetries(why: string | null = null): Promise<boolean> {
    const because = (text: string): string => (why === null ? text : `${why}; ${text}`);
    for (let attempt = 1; ; attempt++) {
      // Stamped before reading: a token written while the CA looks at this one is not missed.
      const seen = tokenStamp();
      const reading = opts.acme === null ? readToken() : null;
      if (reading !== null && 'error' in reading) {
        if (opts.token?.kind !== 'file') {
          if (!(await awaitNewToken(because(reading.error)))) return false;
          continue;
        }
        status.failures++;
        status.lastError = reading.error;
        const delay = retryDelay(attempt);
        logger.error('token_file_unreadable', {
          attempt,
          tokenFile: opts.token.path,
          error: reading.error,
          retryInMs: delay,
          ...(why === null ? {} : { reason: why }),
        });
        if (!(await sleepUnlessTokenChanges(delay, seen))) return false;
        continue;
      }
      try {
        if (reading !== null) await bootstrap(reading.token);
        else await bootstrapOverAcme();
        return true;
      } catch (err) {
        const error = recordFailure(err);
        const via = opts.acme === null ? 'token' : 'acme';
        if (via === 'token' && isRefusal(err)) {
          logger.error('bootstrap_failed', { attempt, via, error });
          if (!(await awaitNewToken(because(`the CA refused the token: ${error}`), seen))) return false;
          continue;
        }
        const delay = retryDelay(attempt);
        logger.error('bootstrap_failed', { attempt, via, error, retryInMs: delay });
        if (!(await deps.sleep(delay))) return false;
      }
    }
  }

  /** One renewal attempt series, until success, a refusal only a token can fix, or expiry. */
  async function renewWithRetries(): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await renew();
        return true;
      } catch (err) {
        recordFailure(err);
        const left = current!.leaf.notAfter.getTime() - deps.now().getTime();
        const delay = Math.min(retryDelay(attempt), Math.max(left, 0));
        const code = codeOf(err);
        const final = code !== null && (NEEDS_NEW_TOKEN.has(code) || REAUTHENTICATE.has(code));
        logger.error('renewal_failed', {
          attempt,
          error: status.lastError,
          serial: current!.leaf.serial,
          keptFiles: true,
          ...(final ? {} : { retryInMs: delay }),
        });
        if (code !== null && REAUTHENTICATE.has(code))
          return reauthenticate(
            `the CA asks certificate ${current!.leaf.serial}'s holder to authenticate again: ${status.lastError}`,
          );
        if (code !== null && NEEDS_NEW_TOKEN.has(code))
          return bootstrapAfter(`the CA refused to renew certificate ${current!.leaf.serial}: ${status.lastError}`);
        if (left <= 0)
          return bootstrapAfter(
            `certificate ${current!.leaf.serial} expired at ${current!.leaf.notAfter.toISOString()} before it could be renewed`,
          );
        if (!(await deps.sleep(delay))) return false;
      }
    }
  }

  /**
   * Bootstraps again with the credential at hand: ACME, or the token file as it is now (it may
   * already hold a fresh token). A `--token` value was spent on the first certificate, so that
   * waits for a new token (or exits 2) as after a revocation.
   */
  async function reauthenticate(reason: string): Promise<boolean> {
    if (opts.acme === null && opts.token?.kind !== 'file') return bootstrapAfter(reason);
    logger.warn('reauthenticating', { reason, via: opts.acme === null ? 'token-file' : 'acme' });
    return bootstrapWithRetries(reason);
  }

  /**
   * The certificate was revoked or expired. A token file is tried at once as it is now: a
   * projected service-account token is a bearer token valid until its `exp`, so a sidecar gets a
   * certificate back without waiting for the kubelet's next rotation; a spent one-time token is
   * refused, and then the agent waits for the file to change.
   */
  async function bootstrapAfter(reason: string): Promise<boolean> {
    if (opts.acme === null && opts.token?.kind === 'file') return reauthenticate(reason);
    if (!(await awaitNewToken(reason))) return false;
    return bootstrapWithRetries();
  }

  /** Reads what is on disk (finishing a write a kill interrupted), or gets the first certificate. */
  async function load(): Promise<boolean> {
    recoverCredentials(opts.paths);
    const creds = readCredentials(opts.paths);
    if (creds !== null) {
      adopt(creds);
      logger.info('loaded', {
        serial: current!.leaf.serial,
        notAfter: current!.leaf.notAfter.toISOString(),
        cert: opts.paths.cert,
      });
      if (deps.now().getTime() >= current!.leaf.notAfter.getTime())
        return bootstrapAfter(
          `certificate ${current!.leaf.serial} on disk expired at ${current!.leaf.notAfter.toISOString()}`,
        );
      return true;
    }
    return bootstrapWithRetries();
  }

  /** `--once` after a refusal asking for the original credential: one bootstrap with it, or exit 2. */
  async function reauthenticateOnce(error: string): Promise<'bootstrapped'> {
    if (opts.acme !== null) {
      logger.warn('reauthenticating', { reason: error, via: 'acme' });
      await bootstrapOverAcme();
      return 'bootstrapped';
    }
    const reading = opts.token?.kind === 'file' ? readToken() : null;
    if (reading === null || 'error' in reading) {
      logger.error('new_token_needed', {
        reason: error,
        ...(reading === null ? {} : { tokenFileError: reading.error }),
        note: 'renewal needs the original credential again: run the agent with a fresh token (--token-file)',
      });
      throw new AgentExit(
        2,
        `renewal refused (${error})${reading === null ? '' : ` and ${reading.error}`}; a new token is needed`,
      );
    }
    logger.warn('reauthenticating', { reason: error, via: 'token-file' });
    try {
      await bootstrap(reading.token);
    } catch (err) {
      logger.error('bootstrap_failed', { attempt: 1, via: 'token', error: describe(err) });
      throw new AgentExit(
        isRefusal(err) ? 2 : 1,
        `renewal refused (${error}) and the token file did not help: ${describe(err)}; a new token is needed`,
      );
    }
    return 'bootstrapped';
  }

  return {
    status: (): AgentStatus => ({ ...status }),

    /** Runs until stopped: load or bootstrap, then renew on schedule forever. */
    async run(): Promise<void> {
      if (!(await load())) return;
      for (;;) {
        const at = await scheduleNext();
        if (!(await deps.sleep(Math.max(0, at.getTime() - deps.now().getTime())))) return;
        if (!(await renewWithRetries())) return;
      }
    },

    /** `--once`: gets the first certificate if there is none, renews if due (or `force`), and returns. */
    async once(force = false): Promise<'bootstrapped' | 'renewed' | 'not due'> {
      recoverCredentials(opts.paths);
      const creds = readCredentials(opts.paths);
      if (creds === null) {
        if (opts.acme !== null) {
          await bootstrapOverAcme();
          return 'bootstrapped';
        }
        const reading = readToken();
        if ('error' in reading)
          throw new AgentExit(2, `there is no certificate yet and no token to get one: ${reading.error}`);
        await bootstrap(reading.token);
        return 'bootstrapped';
      }
      adopt(creds);
      const at = await scheduleNext();
      if (!force && deps.now().getTime() < at.getTime()) {
        logger.info('not_due', { serial: current!.leaf.serial, at: at.toISOString() });
        return 'not due';
      }
      try {
        await renew();
      } catch (err) {
        const code = codeOf(err);
        logger.error('renewal_failed', {
          attempt: 1,
          error: describe(err),
          serial: current!.leaf.serial,
          keptFiles: true,
        });
        // A token file is read again after a revocation too: it may hold a valid bearer token.
        const tokenFile = opts.acme === null && opts.token?.kind === 'file';
        if (code !== null && (REAUTHENTICATE.has(code) || (tokenFile && NEEDS_NEW_TOKEN.has(code))))
          return reauthenticateOnce(describe(err));
        throw new AgentExit(code !== null && NEEDS_NEW_TOKEN.has(code) ? 2 : 1, `renewal failed: ${describe(err)}`);
      }
      return 'renewed';
    },
  };
}
