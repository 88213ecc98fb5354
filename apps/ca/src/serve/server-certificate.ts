import type { Server as HttpsServer } from 'node:https';
import type { Authority, Clock, Logger } from '@shortleaf/authority';
import { encodeCertificates, generateKeyPair, publicKeyOf } from '@shortleaf/pki';
import { secureContextOf } from './tls.js';

export interface ServerCredentials {
  key: string;
  /** Leaf followed by the intermediate, so a client that trusts only the root connects. */
  cert: string;
  notAfter: Date;
}

/** Issues the HTTPS listener's own certificate from the active intermediate, with a fresh key. */
export async function issueServerCredentials(
  authority: Authority,
  names: string[],
  lifetimeMs: number,
): Promise<ServerCredentials> {
  const { privateKey } = generateKeyPair('EC-P256');
  const issued = await authority.issueServerCertificate({ publicKey: publicKeyOf(privateKey), names, lifetimeMs });
  return {
    key: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
    cert: encodeCertificates([issued.der, ...issued.chain]),
    notAfter: issued.notAfter,
  };
}

/**
 * Keeps the listener's certificate fresh: renews at two thirds of its life and hands the new
 * credentials to `apply` (which swaps the TLS context, so no connection is dropped). A failed
 * renewal is logged and retried in a minute while the old certificate is still valid.
 */
export function scheduleServerRenewal(opts: {
  authority: Authority;
  names: string[];
  lifetimeMs: number;
  current: ServerCredentials;
  apply(creds: ServerCredentials): void;
  logger: Logger;
  clock: Clock;
}): { stop(): void; now(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const plan = (notAfter: Date) => {
    if (stopped) return;
    const delay = Math.max(1_000, notAfter.getTime() - opts.clock.now().getTime() - opts.lifetimeMs / 3);
    timer = setTimeout(renew, Math.min(delay, 2 ** 31 - 1));
    timer.unref();
  };
  const renew = async () => {
    try {
      const creds = await issueServerCredentials(opts.authority, opts.names, opts.lifetimeMs);
      opts.apply(creds);
      opts.logger.info('server_certificate_renewed', { notAfter: creds.notAfter.toISOString() });
      plan(creds.notAfter);
    } catch (err) {
      opts.logger.error('server_certificate_renewal_failed', { error: (err as Error).message });
      if (!stopped) {
        timer = setTimeout(renew, 60_000);
        timer.unref();
      }
    }
  };
  plan(opts.current.notAfter);
  return {
    /** Renews at once (after an intermediate is activated), then on the usual plan. */
    now: () => {
      if (stopped) return;
      clearTimeout(timer);
      void renew();
    },
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

/**
 * Gives the HTTPS listener its certificate now and keeps it fresh: the first from the active
 * intermediate, then renewals swapped in without dropping a connection.
 */
export async function keepListenerCertificate(opts: {
  server: HttpsServer;
  authority: Authority;
  names: string[];
  lifetimeMs: number;
  logger: Logger;
  clock: Clock;
}): Promise<{ stop(): void; now(): void }> {
  const current = await issueServerCredentials(opts.authority, opts.names, opts.lifetimeMs);
  opts.server.setSecureContext(secureContextOf(current));
  return scheduleServerRenewal({ ...opts, current, apply: (c) => opts.server.setSecureContext(secureContextOf(c)) });
}
