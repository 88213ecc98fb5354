import {
  createCrlPublisher,
  createOcspResponder,
  createOcspSignerManager,
  loadRootDelegatedResponder,
  type Authority,
  type Clock,
  type KeySealer,
  type LoadedIssuer,
  type Logger,
  type Telemetry,
} from '@shortleaf/authority';
import { issuerPaths } from '@shortleaf/status';
import type { Store } from '@shortleaf/store';
import type { ServeConfig } from './config.js';

/** What the revocation services of every intermediate are built from. */
export interface IssuerServicesDeps {
  store: Store;
  sealer: KeySealer;
  authority: Authority;
  /** The one clock `serve` builds: OCSP answers, CRL schedules and warnings read the time from it. */
  clock: Clock;
  config: ServeConfig;
  logger: Logger;
  /** Base URL of the status listener, which per-intermediate CRL paths hang from. */
  statusBase: string;
  /** Where revocations and published CRLs are counted (metrics); nothing is recorded when absent. */
  telemetry?: Telemetry;
}

/** The revocation services of one intermediate in service: its OCSP responder and its CRL. */
export type IssuerUnit = Awaited<ReturnType<typeof startIssuerUnit>>;

/**
 * Starts what one intermediate publishes: a delegated OCSP responder certificate issued by it, an
 * OCSP responder answering for its certificates (and, through the root-delegated responder, for
 * its own status), and its CRL. Every intermediate in service gets one, so a retired intermediate
 * keeps answering for what it issued.
 */
export async function startIssuerUnit(opts: IssuerServicesDeps & { issuer: LoadedIssuer; minCrlNumber?: bigint }) {
  const { issuer, store, config, logger, telemetry } = opts;
  const { clock } = opts;
  const root = issuer.roots.find((r) => Buffer.from(r.subjectDer).equals(issuer.certificate.issuerDer)) ?? null;
  const rootResponder =
    root === null ? null : await loadRootDelegatedResponder(store.revocations, opts.sealer, issuer.id, root);
  if (rootResponder === null)
    logger.warn('no_root_ocsp_signer', {
      issuer: issuer.name,
      note: "OCSP requests for the intermediate's own status get `unauthorized`; make one with `intermediate csr --ocsp-out` (or `intermediate ocsp-csr`) at the ceremony",
    });

  let responder: ReturnType<typeof createOcspResponder> | undefined;
  const signers = createOcspSignerManager({
    authority: opts.authority,
    issuer,
    lifetimeMs: config.ocsp.signerLifetime,
    logger,
    onRotate: () => responder?.clear(),
  });
  await signers.start();
  responder = createOcspResponder({
    store,
    issuer,
    intermediateResponder: () => signers.current(),
    rootResponder,
    clock,
    logger,
    validityMs: config.ocsp.validity,
    maxCacheEntries: config.ocsp.cacheEntries,
    maxCacheBytes: config.ocsp.cacheBytes,
  });
  const ocsp = responder;
  await ocsp.reloadRootCrl();

  const crls = createCrlPublisher({
    store,
    issuer,
    clock,
    logger,
    // Its own path first; `/crl` too, which leaves issued before intermediates had their own
    // paths carry, so verifiers keep finding this CRL in scope for them.
    distributionPoint: [`${opts.statusBase}${issuerPaths(issuer.name).crl}`, `${opts.statusBase}/crl`],
    validityMs: config.crl.validity,
    refreshAfterMs: config.crl.refreshAfter,
    rebuildDelayMs: config.crl.rebuildDelay,
    // The CRL metrics describe the active intermediate's CRL; the others publish unrecorded.
    ...(telemetry === undefined
      ? {}
      : {
          telemetry: {
            crlPublished(e) {
              if (opts.authority.issuer.id === issuer.id) telemetry.crlPublished(e);
            },
          },
        }),
    ...(opts.minCrlNumber === undefined ? {} : { minNumber: opts.minCrlNumber }),
  });
  await crls.start();

  return {
    issuer,
    /** The responder the root delegated for this intermediate's own status, when there is one. */
    rootSigner: rootResponder === null ? null : { id: rootResponder.id, notAfter: rootResponder.certificate.notAfter },
    ocsp,
    crls,
    stop(): void {
      signers.stop();
      crls.stop();
    },
  };
}
