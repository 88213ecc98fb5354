import { PkiError, buildCrl, lintCrl, reasonName, reasonCode, type CrlEntry } from '@shortleaf/pki';
import { AuthorityError } from './errors.js';
import type { LoadedIssuer } from './issuer.js';
import {
  NO_TELEMETRY,
  type AuthorityStore,
  type Clock,
  type Coordination,
  type CrlRow,
  type Logger,
  type Telemetry,
} from './ports.js';

export interface CrlPublisherOptions {
  /** Its CRLs, and the lock that lets one process at a time build one. */
  store: Pick<AuthorityStore, 'revocations'> & { coordination: Coordination };
  issuer: LoadedIssuer;
  clock: Clock;
  logger: Logger;
  /**
   * The URLs leaves of this intermediate carry as their CRL distribution point; the CRL's IDP
   * names them exactly.
   */
  distributionPoint: string | readonly string[];
  /** thisUpdate → nextUpdate. */
  validityMs: number;
  /** A scheduled rebuild happens once a CRL is this old, well before its nextUpdate. */
  refreshAfterMs: number;
  /** Revocations arriving within this window share one rebuild. */
  rebuildDelayMs: number;
  /**
   * The lowest number the next CRL may take. A database restored from a backup does not know the
   * numbers the original published after the backup; `shortleaf restore` records a floor above
   * them (commands/backup.ts), so one number never names two different CRLs.
   */
  minNumber?: bigint;
  /** Told of every CRL published (size, entries, thisUpdate) for metrics. */
  telemetry?: Pick<Telemetry, 'crlPublished'>;
}

/** How many past CRLs to keep in the database; older ones are never served again. */
const KEEP_CRLS = 10;
/** While another process holds the lock, look again this often for its CRL or the free lock. */
const LOCK_RETRY_MS = 500;
/** A failed build is tried again after this, doubling up to the cap while failures last. */
const RETRY_FIRST_MS = 1_000;
const RETRY_CAP_MS = 30_000;

/**
 * What a request needs of the CRL that answers it: built at or after a time (a CRL's thisUpdate
 * is its build's start, in whole seconds), and newer than a number.
 */
interface Want {
  thisUpdateAtLeast: number;
  numberAbove: bigint;
}

/**
 * A CRL whose build started after `t`, so it read every revocation committed before `t`: its
 * thisUpdate lies in a later second. The same second is not enough, since floored it cannot tell
 * a build that started just before `t` from one just after.
 */
const builtAfter = (t: Date): Want => ({
  thisUpdateAtLeast: (Math.floor(t.getTime() / 1000) + 1) * 1000,
  numberAbove: -1n,
});
const newerThan = (row: CrlRow): Want => ({ thisUpdateAtLeast: -Infinity, numberAbove: row.number });
const merge = (a: Want | null, b: Want): Want =>
  a === null
    ? b
    : {
        thisUpdateAtLeast: Math.max(a.thisUpdateAtLeast, b.thisUpdateAtLeast),
        numberAbove: a.numberAbove > b.numberAbove ? a.numberAbove : b.numberAbove,
      };
/**
 * How far ahead of this process's clock another's CRL may be dated and still answer a request.
 * Instances are expected to keep their clocks synchronised (verifiers reject a CRL dated in their
 * future anyway); a CRL dated further ahead, such as one written before the clock was set back, is
 * never taken as built after a request.
 */
const CLOCK_TOLERANCE_MS = 1_000;
const satisfies = (row: CrlRow | null, want: Want, now: Date): row is CrlRow =>
  row !== null &&
  row.thisUpdate.getTime() >= want.thisUpdateAtLeast &&
  row.thisUpdate.getTime() <= now.getTime() + CLOCK_TOLERANCE_MS &&
  row.number > want.numberAbove;

/**
 * Publishes the intermediate's full CRL (RFC 5280 §5): rebuilt on a schedule well before
 * nextUpdate, and shortly after any revocation with bursts coalesced into one rebuild. Each
 * build takes the next CRL number from the database, so numbers only grow across restarts.
 *
 * Several processes may publish for one intermediate (instances sharing a PostgreSQL database):
 * one builds at a time, holding the lock `crl:{issuer id}`, and re-reads the newest CRL inside it,
 * so a number is never taken twice (the database's unique (issuer, number) backs it). A request is
 * answered by any CRL that satisfies it, whoever built it: a CRL built after a revocation answers
 * every request made before that build started (`builtAfter`), and any CRL newer than the one a
 * refresh was scheduled from answers that refresh, so N instances refreshing at once build one.
 * While another process holds the lock, a request waits for its CRL or the free lock. Every
 * instance serves the newest CRL in the database (`follow`), whoever built it.
 */
export function createCrlPublisher(opts: CrlPublisherOptions) {
  const { store, issuer, clock, logger } = opts;
  const telemetry = opts.telemetry ?? NO_TELEMETRY;
  const lockName = `crl:${issuer.id}`;
  let current: CrlRow | null = null;
  /** What requests not yet taken up by a run need; null when none wait. */
  let wanted: Want | null = null;
  let running: Promise<CrlRow> | null = null;
  let rebuildWant: Want | null = null;
  let rebuildTimer: NodeJS.Timeout | undefined;
  let refreshTimer: NodeJS.Timeout | undefined;
  let retry: { want: Want; timer: NodeJS.Timeout } | null = null;
  let failedRuns = 0;
  let pauseTimer: NodeJS.Timeout | undefined;
  let endPause: (() => void) | undefined;
  let stopped = false;

  async function build(previous: CrlRow | null, lock: { readonly held: boolean }): Promise<CrlRow> {
    const now = new Date(Math.floor(clock.now().getTime() / 1000) * 1000);
    const nextUpdate = new Date(Math.min(now.getTime() + opts.validityMs, issuer.certificate.notAfter.getTime()));
    const rows = await store.revocations.listForCrl(issuer.id, previous?.thisUpdate ?? null);
    const entries: CrlEntry[] = rows.map((r) => ({
      serial: r.serial,
      revokedAt: r.revokedAt,
      reason: reasonName(reasonCode(r.reason)),
    }));
    const following = (previous?.number ?? 0n) + 1n;
    const number = opts.minNumber !== undefined && opts.minNumber > following ? opts.minNumber : following;
    const started = performance.now();
    const der = buildCrl({
      issuer: {
        subjectDer: issuer.certificate.subjectDer,
        subjectKeyIdentifier: issuer.info.subjectKeyIdentifier,
        signer: issuer.signer,
      },
      number,
      thisUpdate: now,
      nextUpdate,
      distributionPoint: opts.distributionPoint,
      entries,
    });
    // Linted before it is stored: a CRL that fails is a bug, and the one being served stays.
    const failures = lintCrl(der, {
      // Checked against the issuer's certificate as parsed, not the builder's input (issuer.info).
      issuer: {
        subjectDer: issuer.certificate.subjectDer,
        subjectKeyIdentifier: issuer.certificate.subjectKeyIdentifier ?? new Uint8Array(0),
        algorithm: issuer.signer.algorithm,
      },
      previousNumber: previous?.number ?? null,
      distributionPoints:
        typeof opts.distributionPoint === 'string' ? [opts.distributionPoint] : opts.distributionPoint,
      validityMs: opts.validityMs,
      now,
    });
    if (failures.length > 0) {
      const cause = new PkiError('lintFailed', `CRL failed lint: ${failures.join('; ')}`);
      logger.error('lint_failed', {
        issuer: issuer.name,
        crlNumber: number.toString(),
        reason: cause.message,
        bug: true,
      });
      throw new AuthorityError('internal', 'the CRL failed its pre-publication checks; nothing was published', {
        cause,
      });
    }
    // The lock ends with the connection that held it; another process may be building this number.
    if (!lock.held)
      throw new AuthorityError('internal', `lost the lock ${lockName} while building; nothing was stored`);
    const row: CrlRow = { issuerId: issuer.id, number, thisUpdate: now, nextUpdate, entries: entries.length, der };
    await store.revocations.insertCrl(row);
    await store.revocations.pruneCrls(issuer.id, KEEP_CRLS);
    telemetry.crlPublished({ number, entries: entries.length, bytes: der.length, thisUpdate: now, nextUpdate });
    logger.info('crl_published', {
      issuer: issuer.name,
      number: number.toString(),
      entries: entries.length,
      bytes: der.length,
      ms: Math.round(performance.now() - started),
      nextUpdate: nextUpdate.toISOString(),
    });
    return row;
  }

  /** Serves `row` if it is newer than the CRL being served; returns the one served. */
  function adopt(row: CrlRow): CrlRow {
    if (current === null || row.number > current.number) {
      current = row;
      scheduleRefresh();
    }
    return current;
  }

  /** Waits, unless stopped meanwhile; someone awaits the request, so the timer keeps the process alive. */
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      endPause = resolve;
      pauseTimer = setTimeout(resolve, ms);
    });

  /**
   * Gets a CRL that satisfies `want`: under the lock, the newest in the database if it does, else
   * a new one; while another process holds the lock, its CRL once it satisfies `want`. A CRL this
   * call builds satisfies it whatever the clock says: the build started after the request.
   */
  async function satisfy(want: Want): Promise<CrlRow> {
    for (;;) {
      if (stopped) throw new AuthorityError('internal', `the CRL publisher of ${issuer.name} has stopped`);
      const lock = await store.coordination.tryLock(lockName);
      if (lock !== null) {
        try {
          const latest = await store.revocations.latestCrl(issuer.id);
          return adopt(satisfies(latest, want, clock.now()) ? latest : await build(latest, lock));
        } finally {
          await lock
            .release()
            .catch((err: Error) => logger.warn('crl_lock_release_failed', { issuer: issuer.name, error: err.message }));
        }
      }
      const latest = await store.revocations.latestCrl(issuer.id);
      if (satisfies(latest, want, clock.now())) return adopt(latest);
      await pause(LOCK_RETRY_MS);
    }
  }

  /** Satisfies every request made until none is waiting; requests arriving meanwhile join in. */
  async function run(): Promise<CrlRow> {
    try {
      let row: CrlRow | null = null;
      while (wanted !== null) {
        const want = wanted;
        wanted = null;
        row = await satisfy(want);
      }
      failedRuns = 0;
      return row!;
    } catch (err) {
      // Every caller waiting on this run gets the failure; background ones ask again (`background`).
      wanted = null;
      throw err;
    } finally {
      running = null;
    }
  }

  function request(want: Want): Promise<CrlRow> {
    wanted = merge(wanted, want);
    running ??= run();
    return running;
  }

  /**
   * A request nobody waits for (after a revocation, on schedule): a failure, such as the database
   * being down, is logged once and the request tried again with growing pauses until it succeeds.
   */
  function background(want: Want): void {
    if (stopped) return;
    request(want).catch((err: Error) => {
      if (stopped) return;
      if (retry !== null) {
        retry.want = merge(retry.want, want);
        return;
      }
      failedRuns += 1;
      const delay = Math.min(RETRY_CAP_MS, RETRY_FIRST_MS * 2 ** (failedRuns - 1));
      logger.error('crl_publish_failed', { issuer: issuer.name, error: err.message, retryInMs: delay });
      const next = {
        want,
        timer: setTimeout(() => {
          retry = null;
          background(next.want);
        }, delay),
      };
      next.timer.unref();
      retry = next;
    });
  }

  function scheduleRefresh(): void {
    clearTimeout(refreshTimer);
    if (stopped || current === null) return;
    const from = current;
    const due = from.thisUpdate.getTime() + opts.refreshAfterMs - clock.now().getTime();
    refreshTimer = setTimeout(() => background(newerThan(from)), Math.min(Math.max(due, 1_000), 2 ** 31 - 1));
    refreshTimer.unref();
  }

  return {
    /**
     * Builds a fresh CRL at start, unless another process built one meanwhile. The stored one may
     * miss revocations recorded while the server was down (or cut short by a shutdown), or name a
     * distribution point the configuration no longer uses, which verifiers would reject as out of
     * scope.
     */
    async start(): Promise<void> {
      const latest = await store.revocations.latestCrl(issuer.id);
      if (latest !== null) adopt(latest);
      await request(builtAfter(clock.now()));
    },
    /** The CRL being served. */
    current: (): CrlRow | null => current,
    /** A CRL built after this call (by this process, or another holding the lock meanwhile). */
    rebuild: (): Promise<CrlRow> => request(builtAfter(clock.now())),
    /**
     * Asks for a CRL built after this call, soon; revocations in the same window share it. Never
     * waits for it.
     */
    requestRebuild(): void {
      if (stopped) return;
      rebuildWant = merge(rebuildWant, builtAfter(clock.now()));
      if (rebuildTimer !== undefined) return;
      rebuildTimer = setTimeout(() => {
        rebuildTimer = undefined;
        const want = rebuildWant!;
        rebuildWant = null;
        background(want);
      }, opts.rebuildDelayMs);
      rebuildTimer.unref();
    },
    /**
     * Serves the newest CRL in the database if another process published it: every instance
     * serves the same CRL, whichever built it.
     */
    async follow(): Promise<void> {
      const latest = await store.revocations.latestCrl(issuer.id);
      if (latest !== null && !stopped) adopt(latest);
    },
    stop(): void {
      stopped = true;
      clearTimeout(rebuildTimer);
      clearTimeout(refreshTimer);
      clearTimeout(pauseTimer);
      if (retry !== null) clearTimeout(retry.timer);
      endPause?.();
    },
  };
}

export type CrlPublisher = ReturnType<typeof createCrlPublisher>;
