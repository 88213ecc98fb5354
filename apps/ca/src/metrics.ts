import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AcmeTelemetry } from '@shortleaf/acme';
import type { FrontDoor, OcspOutcome, Telemetry } from '@shortleaf/authority';
import { REVOCATION_REASONS } from '@shortleaf/pki';

const OCSP_OUTCOMES: readonly OcspOutcome[] = [
  'good',
  'revoked',
  'unknown',
  'malformedRequest',
  'unauthorized',
  'internalError',
  'tryLater',
];
const FRONT_DOORS: readonly FrontDoor[] = ['rest', 'acme', 'internal'];
const ORDER_STATES = ['pending', 'processing', 'valid', 'invalid'] as const;
/** Seconds; issuance is a signature and two durable writes, so most land well under 100 ms. */
const ISSUANCE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface MetricsOptions {
  now(): Date;
  /** Node's process metrics (CPU, memory, event loop lag, GC); on unless false. */
  processMetrics?: boolean;
}

/**
 * The server's Prometheus metrics, in a registry of their own (never prom-client's global one,
 * so two servers in one process, or a test, do not share counts). Returns the telemetry the
 * authority, the OCSP handler and the ACME front door report to, and the `/metrics` handler.
 *
 * OCSP is counted into a plain array and folded into its counter when scraped: the responder
 * answers tens of thousands of requests a second, and prom-client's `inc(labels)` hashes the
 * label set on every call.
 */
export function createMetrics(opts: MetricsOptions) {
  const registry = new Registry();
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry });

  const issued = new Counter({
    name: 'shortleaf_certificates_issued_total',
    help: 'Certificates signed and recorded, by provisioner, front door (rest, acme, internal) and action (issue, renew).',
    labelNames: ['provisioner', 'front_door', 'action'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'shortleaf_issuance_duration_seconds',
    help: 'Time from a front door asking the authority for a certificate to the signed certificate being recorded.',
    labelNames: ['front_door'] as const,
    buckets: ISSUANCE_BUCKETS,
    registers: [registry],
  });
  for (const frontDoor of FRONT_DOORS) latency.zero({ front_door: frontDoor });

  const revocations = new Counter({
    name: 'shortleaf_revocations_total',
    help: 'Certificates revoked through this server, by RFC 5280 reason.',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  for (const reason of REVOCATION_REASONS) revocations.inc({ reason }, 0);

  // OCSP: index = outcome * 2 + (hit ? 1 : 0). `counted` is what the hot path adds to; `folded`
  // what has already gone into the prom-client counter.
  const ocspIndex = new Map(OCSP_OUTCOMES.map((o, i) => [o, i * 2]));
  const counted = new Float64Array(OCSP_OUTCOMES.length * 2);
  const folded = new Float64Array(OCSP_OUTCOMES.length * 2);
  const ocsp = new Counter({
    name: 'shortleaf_ocsp_responses_total',
    help: 'OCSP responses sent, by status (good, revoked, unknown, or the error response) and cache (hit: pre-signed; miss: signed for the request).',
    labelNames: ['status', 'cache'] as const,
    registers: [registry],
    collect() {
      for (let i = 0; i < counted.length; i++) {
        const delta = counted[i]! - folded[i]!;
        if (delta === 0) continue;
        folded[i] = counted[i]!;
        this.inc({ status: OCSP_OUTCOMES[i >> 1]!, cache: i & 1 ? 'hit' : 'miss' }, delta);
      }
    },
  });
  for (const status of OCSP_OUTCOMES) for (const cache of ['hit', 'miss']) ocsp.inc({ status, cache }, 0);
  let ocspCacheEntries: () => number = () => 0;
  new Gauge({
    name: 'shortleaf_ocsp_cache_entries',
    help: 'Pre-signed OCSP responses held in memory.',
    registers: [registry],
    collect() {
      this.set(ocspCacheEntries());
    },
  });

  let crl: { number: bigint; entries: number; bytes: number; thisUpdate: Date; nextUpdate: Date } | null = null;
  const crlPublications = new Counter({
    name: 'shortleaf_crl_published_total',
    help: 'CRLs built and signed for the active intermediate.',
    registers: [registry],
  });
  const crlGauge = (name: string, help: string, value: (c: NonNullable<typeof crl>) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        if (crl !== null) this.set(value(crl));
      },
    });
  crlGauge('shortleaf_crl_entries', 'Revoked certificates listed in the current CRL.', (c) => c.entries);
  crlGauge('shortleaf_crl_bytes', 'Size of the current CRL in bytes (DER).', (c) => c.bytes);
  crlGauge('shortleaf_crl_number', 'CRL number of the current CRL.', (c) => Number(c.number));
  crlGauge(
    'shortleaf_crl_age_seconds',
    'Seconds since thisUpdate of the current CRL.',
    (c) => (opts.now().getTime() - c.thisUpdate.getTime()) / 1000,
  );
  crlGauge(
    'shortleaf_crl_next_update_seconds',
    'Seconds until nextUpdate of the current CRL (negative once relying parties would reject it).',
    (c) => (c.nextUpdate.getTime() - opts.now().getTime()) / 1000,
  );

  const orders = new Counter({
    name: 'shortleaf_acme_orders_total',
    help: 'ACME orders entering a recorded state: pending (created), processing (finalize began), valid (certificate issued), invalid (failed).',
    labelNames: ['state'] as const,
    registers: [registry],
  });
  const orderChildren = new Map(ORDER_STATES.map((state) => [state, orders.labels({ state })]));
  for (const state of ORDER_STATES) orders.inc({ state }, 0);
  const validationFailures = new Counter({
    name: 'shortleaf_acme_validation_failures_total',
    help: 'Failed ACME challenge validations, by challenge type and ACME problem type.',
    labelNames: ['challenge', 'problem'] as const,
    registers: [registry],
  });

  const authority: Telemetry = {
    issued(e) {
      issued.inc({ provisioner: e.provisioner, front_door: e.frontDoor, action: e.action });
      latency.observe({ front_door: e.frontDoor }, e.ms / 1000);
    },
    revoked: (reason) => revocations.inc({ reason }),
    ocspAnswered(outcome, cacheHit) {
      const i = ocspIndex.get(outcome);
      if (i !== undefined) counted[cacheHit ? i + 1 : i]! += 1;
    },
    crlPublished(e) {
      crl = e;
      crlPublications.inc();
    },
  };
  const acme: AcmeTelemetry = {
    orderState: (state) => orderChildren.get(state)?.inc(),
    validationFailed: (challenge, problem) => validationFailures.inc({ challenge, problem }),
  };

  /** Serves `GET /metrics` (and HEAD) in the Prometheus text format; false for any other request. */
  function handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? '';
    if ((req.method !== 'GET' && req.method !== 'HEAD') || (url !== '/metrics' && !url.startsWith('/metrics?')))
      return false;
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      () => {
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('metrics could not be collected\n');
      },
    );
    return true;
  }

  return {
    registry,
    /** For the authority, the revoker, the CRL publisher and the OCSP handler. */
    authority,
    acme,
    handle,
    /** Where the OCSP cache size is read at scrape time. */
    watchOcspCache(entries: () => number): void {
      ocspCacheEntries = entries;
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
