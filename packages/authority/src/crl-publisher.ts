import { PkiError, buildCrl, lintCrl, reasonName, reasonCode, type CrlEntry } from '@shortleaf/pki';
import { AuthorityError } from './errors.js';
import type { LoadedIssuer } from './issuer.js';
import { NO_TELEMETRY, type AuthorityStore, type Clock, type CrlRow, type Logger, type Telemetry } from './ports.js';

export interface CrlPublisherOptions {
  store: AuthorityStore;
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

/**
 * Publishes the intermediate's full CRL (RFC 5280 §5): rebuilt on a schedule well before
 * nextUpdate, and shortly after any revocation with bursts coalesced into one rebuild. Each
 * build takes the next CRL number from the database, so numbers only grow across restarts.
 */
export function createCrlPublisher(opts: CrlPublisherOptions) {
  const { store, issuer, clock, logger } = opts;
  const telemetry = opts.telemetry ?? NO_TELEMETRY;
  let current: CrlRow | null = null;
  let building: Promise<CrlRow> | null = null;
  let again = false;
  let rebuildTimer: NodeJS.Timeout | undefined;
  let refreshTimer: NodeJS.Timeout | undefined;
  let stopped = false;

  async function build(): Promise<CrlRow> {
    const previous = await store.revocations.latestCrl(issuer.id);
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

  /** Builds now, or once more after the build in progress if one is running. */
  async function rebuild(): Promise<CrlRow> {
    if (building !== null) {
      again = true;
      return building;
    }
    building = (async () => {
      try {
        let row = await build();
        while (again && !stopped) {
          again = false;
          row = await build();
        }
        current = row;
        scheduleRefresh();
        return row;
      } finally {
        building = null;
      }
    })();
    return building;
  }

  function scheduleRefresh(): void {
    clearTimeout(refreshTimer);
    if (stopped || current === null) return;
    const due = current.thisUpdate.getTime() + opts.refreshAfterMs - clock.now().getTime();
    refreshTimer = setTimeout(
      () => void rebuild().catch((err: Error) => logger.error('crl_publish_failed', { error: err.message })),
      Math.min(Math.max(due, 1_000), 2 ** 31 - 1),
    );
    refreshTimer.unref();
  }

  return {
    /**
     * Builds a fresh CRL at start. The stored one may miss revocations recorded while the server
     * was down (or cut short by a shutdown), or name a distribution point the configuration no
     * longer uses, which verifiers would reject as out of scope.
     */
    async start(): Promise<void> {
      current = await store.revocations.latestCrl(issuer.id);
      await rebuild();
    },
    /** The CRL being served. */
    current: (): CrlRow | null => current,
    rebuild,
    /** Asks for a rebuild soon; revocations in the same window share it. Never waits for it. */
    requestRebuild(): void {
      if (rebuildTimer !== undefined || stopped) return;
      rebuildTimer = setTimeout(() => {
        rebuildTimer = undefined;
        rebuild().catch((err: Error) => logger.error('crl_publish_failed', { error: err.message }));
      }, opts.rebuildDelayMs);
      rebuildTimer.unref();
    },
    stop(): void {
      stopped = true;
      clearTimeout(rebuildTimer);
      clearTimeout(refreshTimer);
    },
  };
}

export type CrlPublisher = ReturnType<typeof createCrlPublisher>;
