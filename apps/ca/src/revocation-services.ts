import {
  createOcspRouter,
  createRevoker,
  IN_SERVICE,
  issuerStatuses,
  issuerWarnings,
  latestRootCrl,
  rootFingerprint,
  loadIssuer,
  rootCrlWarnings,
  rootOcspSignerWarnings,
  type LoadedIssuer,
  type RootCrlRow,
} from '@shortleaf/authority';
import { parseCrl } from '@shortleaf/pki';
import type { PublishedIssuer } from '@shortleaf/status';
import type { Store } from '@shortleaf/store';
import { startIssuerUnit, type IssuerServicesDeps, type IssuerUnit } from './issuer-unit.js';
import { CRL_NUMBER_FLOOR_SETTING } from './layout.js';

const WATCH_INTERVAL_MS = 1_000;
const OCSP_REFRESH_INTERVAL_MS = 60_000;
const WARNING_LOG_INTERVAL_MS = 3_600_000;
/** How often intermediates are re-examined even if nothing changed (besides when one is due to leave service). */
const RECONCILE_INTERVAL_MS = 600_000;

/** The CRL number floor `shortleaf restore` recorded in the database (commands/backup.ts), if any. */
async function crlNumberFloor(store: Store): Promise<bigint | undefined> {
  const value = await store.getSetting(CRL_NUMBER_FLOOR_SETTING);
  return value !== null && /^\d+$/.test(value) ? BigInt(value) : undefined;
}

/**
 * Which intermediates exist, which is active, which are certified, and which root-delegated OCSP
 * responder each answers with (the ceremony re-signs it): a change means work.
 */
async function issuersFingerprint(store: Store): Promise<string> {
  const rows = await store.listIssuers();
  const signers = await Promise.all(
    rows.map(async (r) => (await store.revocations.getOcspSigner(r.id, { certified: true }))?.id ?? '-'),
  );
  return rows.map((r, i) => `${r.id}:${r.active ? 1 : 0}:${r.certDer === null ? 0 : 1}:${signers[i]}`).join(',');
}

/**
 * Runs `look` on every `tick` (the poll, or a store notice), never twice at once: ticks arriving
 * while it runs make one more run after it, so a burst of notices costs two runs, not one each.
 * A failure, such as the database being down, is logged when it starts and when it ends, not on
 * every tick in between.
 */
function startWatch(look: () => Promise<void>, logger: IssuerServicesDeps['logger']) {
  let running = false;
  let again = false;
  let failing = false;
  let stopped = false;
  const tick = (): void => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = true;
    void (async () => {
      do {
        again = false;
        try {
          await look();
          if (failing) logger.info('revocation_watch_recovered', {});
          failing = false;
        } catch (err) {
          if (!failing)
            logger.error('revocation_watch_failed', {
              error: (err as Error).message,
              note: 'OCSP answers from memory; retrying every second',
            });
          failing = true;
        }
      } while (again && !stopped);
      running = false;
    })();
  };
  return {
    tick,
    stop: () => {
      stopped = true;
    },
  };
}

/**
 * Wires revocation for `serve` across every intermediate in service (staged, active, and retired
 * ones whose certificates have not all expired): one CRL publisher and OCSP responder each, an
 * OCSP router that picks the responder from the request's CertID, the revoker that tells the
 * right one, and a watcher that picks up what other processes wrote to the database: revocations
 * (`shortleaf revoke`), root CRLs (`root-crl import`), imported and activated intermediates
 * (`intermediate import`, `intermediate activate`). An activation switches the authority to the
 * new intermediate without a restart, after its CRL and OCSP responder are up.
 */
export async function startRevocationServices(
  opts: IssuerServicesDeps & {
    /** Called after the authority switched to a newly activated intermediate. */
    onActivated?: (issuer: LoadedIssuer) => void;
  },
) {
  const { store, config, logger, authority } = opts;
  const { clock } = opts;
  const minCrlNumber = await crlNumberFloor(store);
  const units = new Map<string, IssuerUnit>();
  let roots: Uint8Array[] = await store.listRoots();

  const startUnit = (issuer: LoadedIssuer) =>
    startIssuerUnit({ ...opts, issuer, ...(minCrlNumber === undefined ? {} : { minCrlNumber }) });

  /** Units in service, the active intermediate's first. */
  const ordered = (): IssuerUnit[] => {
    const activeId = authority.issuer.id;
    const active = units.get(activeId);
    return active === undefined
      ? [...units.values()]
      : [active, ...[...units.values()].filter((u) => u.issuer.id !== activeId)];
  };

  let fingerprint = '';
  let nextReview = Infinity;
  /**
   * Brings the running units in line with the database: starts one for each intermediate newly in
   * service, stops those out of service, and switches the authority when another is active.
   */
  async function reconcile(): Promise<void> {
    fingerprint = await issuersFingerprint(store);
    roots = await store.listRoots();
    const wanted = (await issuerStatuses(store, clock.now())).filter((s) => IN_SERVICE.has(s.state));
    // Look again the moment a retired intermediate's last certificate, or any intermediate, expires.
    const now = clock.now().getTime();
    const due = wanted
      .flatMap((s) => [s.certificate!.notAfter.getTime(), ...(s.state === 'retired' ? [s.lastExpiry!.getTime()] : [])])
      .filter((t) => t > now);
    nextReview = Math.min(Infinity, ...due);
    for (const status of wanted) {
      const running = units.get(status.row.id);
      if (running !== undefined) {
        // A root-delegated OCSP responder re-signed at a ceremony (`intermediate ocsp-import`):
        // the unit starts again around it; the one it replaces answers until then.
        const signer = await store.revocations.getOcspSigner(status.row.id, { certified: true });
        if (signer === null || signer.id === running.rootSigner?.id) continue;
        try {
          units.set(status.row.id, await startUnit(running.issuer));
          running.stop();
          logger.info('root_ocsp_signer_loaded', { issuer: running.issuer.name });
        } catch (err) {
          logger.error('root_ocsp_signer_unavailable', {
            issuer: running.issuer.name,
            error: (err as Error).message,
            note: 'the responder in use keeps answering',
          });
        }
        continue;
      }
      try {
        // The active intermediate the authority already holds is not unsealed twice.
        const issuer =
          status.row.id === authority.issuer.id ? authority.issuer : await loadIssuer(store, opts.sealer, status.row);
        units.set(status.row.id, await startUnit(issuer));
        if (status.row.id !== authority.issuer.id)
          logger.info('issuer_in_service', {
            issuer: issuer.name,
            state: status.state,
            notAfter: issuer.certificate.notAfter.toISOString(),
          });
      } catch (err) {
        // One unusable intermediate (a key that does not unseal, a root no longer trusted) must
        // not stop the others; if it is the one just activated, issuance stays where it was.
        if (status.row.id === authority.issuer.id) throw err;
        logger.error('issuer_unavailable', {
          issuer: status.row.name,
          state: status.state,
          error: (err as Error).message,
        });
      }
    }
    const active = wanted.find((s) => s.state === 'active');
    const activeUnitFound = active === undefined ? undefined : units.get(active.row.id);
    if (active !== undefined && activeUnitFound === undefined) {
      logger.error('issuer_activation_failed', {
        issuer: active.row.name,
        note: `new certificates still come from ${authority.issuer.name}`,
      });
    } else if (activeUnitFound !== undefined && activeUnitFound.issuer.id !== authority.issuer.id) {
      const previous = authority.issuer;
      const next = activeUnitFound.issuer;
      authority.activate(next);
      logger.info('issuer_activated', {
        issuer: next.name,
        previous: previous.name,
        notAfter: next.certificate.notAfter.toISOString(),
      });
      opts.onActivated?.(next);
    }
    for (const [id, unit] of units) {
      if (id === authority.issuer.id || wanted.some((s) => s.row.id === id)) continue;
      unit.stop();
      units.delete(id);
      logger.info('issuer_out_of_service', {
        issuer: unit.issuer.name,
        note: 'every certificate it issued has expired, or it has itself; its CRL and OCSP answers stop',
      });
    }
  }
  await reconcile();

  const ocsp = createOcspRouter(() => ordered().map((u) => u.ocsp));
  const activeUnit = (): IssuerUnit => units.get(authority.issuer.id)!;

  const onRevoked = async (serial: string) => {
    const row = await store.getCertificate(serial);
    const unit = row === null ? undefined : units.get(row.issuerId);
    if (unit === undefined) return;
    await unit.ocsp.resign(serial);
    unit.crls.requestRebuild();
  };
  // Revocations this process made are handled at once; the watcher is for other processes'.
  const handledHere = new Set<string>();
  const revoke = createRevoker({
    store,
    clock,
    logger,
    ...(opts.telemetry === undefined ? {} : { telemetry: opts.telemetry }),
    onRevoked: async (serial) => {
      handledHere.add(serial);
      await onRevoked(serial);
    },
  });

  // The root CRL served at /root.crl and checked for the active intermediate's own status.
  const activeRoot = (): Uint8Array | null => {
    const issuer = authority.issuer;
    return issuer.roots.find((r) => Buffer.from(r.subjectDer).equals(issuer.certificate.issuerDer))?.der ?? null;
  };
  // Every root's newest CRL, by fingerprint: during a root rollover proxies that check the whole
  // chain need the old root's CRL as well as the new one's (`/root/{fingerprint}.crl`).
  const rootCrls = new Map<string, RootCrlRow>();
  async function readRootCrls(): Promise<void> {
    for (const der of roots) {
      const latest = await latestRootCrl(store, der);
      if (latest !== null) rootCrls.set(latest.rootFingerprint, latest);
    }
  }
  const activeRootCrl = (): RootCrlRow | null => {
    const root = activeRoot();
    return root === null ? null : (rootCrls.get(rootFingerprint(root)) ?? null);
  };
  await readRootCrls();
  let rootCrl = activeRootCrl();
  const warnBeforeMs = config.rootCrl.warnBefore;
  const issuerWarnBeforeMs = config.intermediate.warnBefore;
  let parsedRootCrl = rootCrl === null ? null : parseCrl(rootCrl.der);
  const intermediateWarnings = () =>
    issuerWarnings(authority.issuer.certificate, parsedRootCrl, clock.now(), issuerWarnBeforeMs);
  const rootWarnings = () => rootCrlWarnings(rootCrl, clock.now(), warnBeforeMs);
  const ocspSignerWarnBeforeMs = config.intermediate.ocspSignerWarnBefore;
  const ocspSignerWarnings = () =>
    ordered().flatMap((u) => rootOcspSignerWarnings(u.issuer.name, u.rootSigner, clock.now(), ocspSignerWarnBeforeMs));
  const warnings = () => [...intermediateWarnings(), ...rootWarnings(), ...ocspSignerWarnings()];

  const logWarnings = () => {
    for (const w of intermediateWarnings()) logger.warn('intermediate_warning', { warning: w });
    for (const w of rootWarnings()) logger.warn('root_crl_warning', { warning: w });
    for (const w of ocspSignerWarnings()) logger.warn('root_ocsp_signer_warning', { warning: w });
  };

  /** Reads every root's newest CRL; when the active root's changed, the warnings and OCSP follow it. */
  async function watchRootCrls(): Promise<void> {
    await readRootCrls();
    const latest = activeRootCrl();
    if (
      latest === null ||
      (rootCrl !== null && latest.number === rootCrl.number && Buffer.from(latest.der).equals(rootCrl.der))
    )
      return;
    rootCrl = latest;
    parsedRootCrl = parseCrl(latest.der);
    logWarnings();
    for (const unit of units.values()) await unit.ocsp.reloadRootCrl();
    logger.info('root_crl_loaded', { number: latest.number.toString(), nextUpdate: latest.nextUpdate.toISOString() });
  }

  // Another process may write revocations, import a root CRL, import or activate an
  // intermediate, or publish a CRL: look every second, and at once when the store sends a notice.
  let revocationCursor = await store.revocations.changeCursor();
  let lastReconcile = clock.now().getTime();
  async function look(): Promise<void> {
    if (
      (await issuersFingerprint(store)) !== fingerprint ||
      clock.now().getTime() >= nextReview ||
      clock.now().getTime() - lastReconcile >= RECONCILE_INTERVAL_MS
    ) {
      lastReconcile = clock.now().getTime();
      await reconcile().catch((err: Error) =>
        logger.error('issuer_reconcile_failed', { error: err.message, note: 'the intermediate in use is unchanged' }),
      );
    }
    // The cursor moves past a revocation once it is handled: one that fails (the database went
    // away mid-way) is handled again on the next look.
    for (const r of await store.revocations.changes(revocationCursor)) {
      if (!handledHere.delete(r.serial)) await onRevoked(r.serial);
      revocationCursor = r.cursor;
    }
    await watchRootCrls();
    // The CRL another instance built after a revocation or on schedule: every instance serves it.
    for (const unit of units.values()) await unit.crls.follow();
  }
  const watch = startWatch(look, logger);
  const watcher = setInterval(watch.tick, WATCH_INTERVAL_MS);
  watcher.unref();
  const topics = ['revocations', 'issuers', 'crls'] as const;
  const unsubscribe = await Promise.all(topics.map((topic) => store.coordination.subscribe(topic, watch.tick)));

  const refresher = setInterval(() => {
    for (const unit of units.values())
      void unit.ocsp
        .refresh()
        .catch((err: Error) => logger.error('ocsp_refresh_failed', { issuer: unit.issuer.name, error: err.message }));
  }, OCSP_REFRESH_INTERVAL_MS);
  refresher.unref();
  logWarnings();
  const warner = setInterval(logWarnings, WARNING_LOG_INTERVAL_MS);
  warner.unref();

  return {
    ocsp: {
      respond: ocsp.respond,
      lookup: ocsp.lookup,
      /** Pre-signed answers held, and the bytes they count against `ocsp.cacheBytes` (each intermediate has its own budget). */
      stats: () =>
        [...units.values()].reduce(
          (sum, u) => ({ entries: sum.entries + u.ocsp.stats().entries, bytes: sum.bytes + u.ocsp.stats().bytes }),
          { entries: 0, bytes: 0 },
        ),
    },
    /** The active intermediate's CRL publisher. */
    crls: { current: () => activeUnit().crls.current() },
    /** What the status listener publishes: intermediates in service, the active one first. */
    published: (): PublishedIssuer[] =>
      ordered().map((u) => ({
        name: u.issuer.name,
        certificate: u.issuer.certificate.der,
        crl: () => u.crls.current(),
      })),
    /** Intermediates in service (DER), the active one first, for `/intermediates.pem`. */
    intermediates: (): Uint8Array[] => ordered().map((u) => u.issuer.certificate.der),
    roots: (): Uint8Array[] => roots,
    revoke,
    rootCrl: () => rootCrl,
    /** The newest imported CRL of the root with this SHA-256 fingerprint (lower-case hex), or null. */
    rootCrlOf: (fingerprint: string): RootCrlRow | null => rootCrls.get(fingerprint) ?? null,
    warnings,
    stop(): void {
      for (const off of unsubscribe) off();
      watch.stop();
      clearInterval(watcher);
      clearInterval(refresher);
      clearInterval(warner);
      for (const unit of units.values()) unit.stop();
    },
  };
}

/** What `startRevocationServices` gives `serve`: the revoker, OCSP, CRLs, what the status listener publishes, warnings. */
export type RevocationServices = Awaited<ReturnType<typeof startRevocationServices>>;
