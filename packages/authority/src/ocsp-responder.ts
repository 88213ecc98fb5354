import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import {
  MAX_OCSP_CERT_IDS,
  PkiError,
  buildOcspResponse,
  issuerHashes,
  lintOcspResponse,
  ocspErrorResponse,
  parseCrl,
  parseOcspRequest,
  reasonName,
  reasonCode,
  type CertId,
  type OcspCertStatus,
  type OcspHash,
} from '@shortleaf/pki';
import { StoreError } from '@shortleaf/store/contracts';
import type { LoadedIssuer } from './issuer.js';
import { DEFAULT_OCSP_CACHE_BYTES, createOcspCache, keyOf, requestKey, type CachedResponse } from './ocsp-cache.js';
import type { ManagedResponder } from './ocsp-signers.js';
import type { AuthorityStore, Clock, Logger } from './ports.js';
import { rootFingerprint } from './root-crl.js';

export type OcspOutcome =
  'good' | 'revoked' | 'unknown' | 'malformedRequest' | 'unauthorized' | 'internalError' | 'tryLater';

/** What the HTTP layer needs to answer: the bytes, and for cacheable answers their validity. */
export interface OcspAnswer {
  body: Uint8Array;
  outcome: OcspOutcome;
  /** Set for signed responses without a nonce, which an HTTP cache may keep (RFC 5019 §6.2). */
  cache: { thisUpdate: Date; nextUpdate: Date; etag: string } | null;
  /** Served from the pre-signed cache without a signature. */
  hit: boolean;
}

export interface OcspResponderOptions {
  store: AuthorityStore;
  issuer: LoadedIssuer;
  /** The intermediate's delegated responder (rotates; always ask for the current one). */
  intermediateResponder(): ManagedResponder;
  /** The root-delegated responder for the intermediate's own status, if the ceremony made one. */
  rootResponder: ManagedResponder | null;
  clock: Clock;
  logger: Logger;
  /** thisUpdate → nextUpdate of a response. */
  validityMs: number;
  /** Most pre-signed responses kept in memory. */
  maxCacheEntries: number;
  /** Most bytes pre-signed responses may take in memory (`DEFAULT_OCSP_CACHE_BYTES` when absent). */
  maxCacheBytes?: number;
}

const HASHES: readonly OcspHash[] = ['sha1', 'sha256', 'sha384', 'sha512'];

/** Which signer may answer for a CertID (RFC 6960 §4.2.2.2): the one its issuer delegated to. */
type Signer = 'intermediate' | 'root';

/** The most telling status of several, for the outcome a multi-CertID answer is counted under. */
const RANK: Record<OcspCertStatus['kind'], number> = { good: 0, unknown: 1, revoked: 2 };

/**
 * The RFC 6960 responder, with RFC 5019's pre-signed profile: a response without a nonce is
 * signed once per CertID and served from memory until half its validity has passed, so the hot
 * path is a lookup; a revocation drops and re-signs the serial's responses at once. A nonce
 * (RFC 9654) needs a fresh signature, echoing it, as does a request for several CertIDs (one
 * response answers them all). The signer is chosen by the CertID's issuer: the intermediate's
 * delegated responder for leaves, the root-delegated one for the intermediate.
 *
 * Nothing an unauthenticated client sends grows memory beyond the cache's byte budget: answers
 * are keyed on the CertID alone, only serials we issued are kept, and no index of request bytes
 * exists (a client sending the minimal request form is answered from the key it is).
 */
export function createOcspResponder(opts: OcspResponderOptions) {
  const { store, issuer, clock, logger } = opts;
  const cache = createOcspCache({
    maxEntries: opts.maxCacheEntries,
    maxBytes: opts.maxCacheBytes ?? DEFAULT_OCSP_CACHE_BYTES,
  });
  // Bumped by every invalidation. An answer whose status was read under an older epoch is still
  // returned but never cached: a revocation landing while a request was reading the database must
  // not be overwritten by the "good" that request signed. One counter rather than one per serial,
  // so it takes no memory per revocation; a revocation only costs concurrent requests their caching.
  let epoch = 0;
  const intermediateHashes = new Map(HASHES.map((h) => [h, issuerHashes(issuer.certificate, h)]));
  const rootHashes = issuer.roots.map((root) => ({
    root,
    hashes: new Map(HASHES.map((h) => [h, issuerHashes(root, h)])),
  }));
  let rootCrl: { number: bigint; revoked: Map<string, { revokedAt: Date; reason: string }> } | null = null;

  const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(b);
  const matches = (id: CertId, h: { nameHash: Uint8Array; keyHash: Uint8Array } | undefined) =>
    h !== undefined && same(id.issuerNameHash, h.nameHash) && same(id.issuerKeyHash, h.keyHash);
  const wholeSecond = (d: Date) => new Date(Math.floor(d.getTime() / 1000) * 1000);

  /** Reloads the root CRL the intermediate's status comes from (after an import). */
  async function reloadRootCrl(): Promise<void> {
    const root = issuer.roots.find((r) => same(r.subjectDer, issuer.certificate.issuerDer));
    if (root === undefined) return;
    const row = await store.revocations.latestRootCrl(rootFingerprint(root.der));
    if (row === null || (rootCrl !== null && row.number === rootCrl.number)) return;
    const parsed = parseCrl(row.der);
    rootCrl = {
      number: row.number,
      revoked: new Map(parsed.entries.map((e) => [e.serial, { revokedAt: e.revokedAt, reason: e.reason }])),
    };
    invalidate(issuer.certificate.serial);
  }

  async function leafStatus(serial: string): Promise<OcspCertStatus> {
    const cert = await store.getCertificate(serial);
    // A reserved certificate may have been signed before its completion was recorded: answer for it.
    if (cert === null || cert.issuerId !== issuer.id) return { kind: 'unknown' };
    const revoked = await store.revocations.get(serial);
    if (revoked === null) return { kind: 'good' };
    return { kind: 'revoked', revokedAt: revoked.revokedAt, reason: reasonName(reasonCode(revoked.reason)) };
  }

  function intermediateStatus(serial: string): OcspCertStatus {
    if (serial !== issuer.certificate.serial) return { kind: 'unknown' };
    const entry = rootCrl?.revoked.get(serial);
    return entry === undefined
      ? { kind: 'good' }
      : { kind: 'revoked', revokedAt: entry.revokedAt, reason: reasonName(reasonCode(entry.reason)) };
  }

  /** The signer authorized for a CertID, or null when neither our intermediate nor its root issued it. */
  function signerFor(certId: CertId): Signer | null {
    if (matches(certId, intermediateHashes.get(certId.hash))) return 'intermediate';
    const byRoot =
      opts.rootResponder !== null &&
      rootHashes.some(
        (r) => same(r.root.subjectDer, issuer.certificate.issuerDer) && matches(certId, r.hashes.get(certId.hash)),
      );
    return byRoot ? 'root' : null;
  }

  const statusOf = (certId: CertId, signer: Signer): Promise<OcspCertStatus> | OcspCertStatus =>
    signer === 'intermediate' ? leafStatus(certId.serial) : intermediateStatus(certId.serial);

  function sign(
    certIds: readonly CertId[],
    statuses: readonly OcspCertStatus[],
    signer: Signer,
    nonce: Uint8Array | null,
  ) {
    const responder = signer === 'intermediate' ? opts.intermediateResponder() : opts.rootResponder!;
    const at = clock.now();
    const now = wholeSecond(at);
    const nextUpdate = wholeSecond(
      new Date(Math.min(now.getTime() + opts.validityMs, responder.certificate.notAfter.getTime())),
    );
    const responses = certIds.map((certId, i) => ({ certId, status: statuses[i]!, thisUpdate: now, nextUpdate }));
    const body = buildOcspResponse({ responder, producedAt: now, responses, nonce });
    // Linted once, as it is signed: a pre-signed answer is served from the cache without another look.
    const failures = lintOcspResponse(body, { responder, now: at, certIds, statuses, nonce });
    if (failures.length > 0) {
      logger.error('lint_failed', {
        serials: certIds.map((c) => c.serial),
        reason: `OCSP response failed lint: ${failures.join('; ')}`,
        bug: true,
      });
      return null;
    }
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    return { body, thisUpdate: now, nextUpdate, etag };
  }

  /** Drops every cached response for a serial; the next request re-reads its status. */
  function invalidate(serial: string): CertId[] {
    epoch++;
    return cache.dropSerial(serial);
  }

  const fresh = (e: CachedResponse, now: number) =>
    now < e.thisUpdate.getTime() + (e.nextUpdate.getTime() - e.thisUpdate.getTime()) / 2;
  const toAnswer = (e: CachedResponse, hit: boolean): OcspAnswer => ({
    body: e.body,
    outcome: e.outcome,
    cache: { thisUpdate: e.thisUpdate, nextUpdate: e.nextUpdate, etag: e.etag },
    hit,
  });
  const error = (outcome: 'malformedRequest' | 'unauthorized' | 'internalError' | 'tryLater'): OcspAnswer => ({
    body: ocspErrorResponse(outcome),
    outcome,
    cache: null,
    hit: false,
  });

  /** The fast path by cache key (`requestKey`): a fresh pre-signed answer, or null. */
  function lookupKey(key: string | null): OcspAnswer | null {
    const hit = key === null ? undefined : cache.get(key);
    return hit !== undefined && fresh(hit, clock.now().getTime()) ? toAnswer(hit, true) : null;
  }

  /**
   * The hot path: answers a minimal request (RFC 5019 §2.1.1, what nginx and OpenSSL without a
   * nonce send) from the cache, without parsing it, or returns null when it needs the full path
   * (first sight, another request form, a nonce, a stale or invalidated response).
   */
  function lookup(der: Uint8Array): OcspAnswer | null {
    return lookupKey(requestKey(der));
  }

  async function respond(der: Uint8Array): Promise<OcspAnswer> {
    const fast = lookup(der);
    if (fast !== null) return fast;
    let request;
    try {
      request = parseOcspRequest(der, { maxCertIds: MAX_OCSP_CERT_IDS });
    } catch (err) {
      if (err instanceof PkiError) return error('malformedRequest');
      throw err;
    }
    const { certIds, nonce } = request;
    try {
      if (certIds.length > 1 || nonce !== null) return await answerEach(certIds, nonce);
      const certId = certIds[0]!;
      // The same question in another form (requestorName, unknown extensions, a signature, an
      // explicit version): the same pre-signed answer, found by its CertID.
      return lookupKey(keyOf(certId)) ?? (await answer(certId));
    } catch (err) {
      if (!(err instanceof StoreError && err.code === 'storageUnavailable')) throw err;
      // The database is down (a restart, a failover): a pre-signed answer past its refresh point
      // but still valid beats none, and otherwise the client is told to ask again (RFC 6960 §2.3).
      const kept = certIds.length === 1 && nonce === null ? cache.get(keyOf(certIds[0]!)) : undefined;
      return kept !== undefined && clock.now() < kept.nextUpdate ? toAnswer(kept, true) : error('tryLater');
    }
  }

  /**
   * Signs one response for every CertID of a request (RFC 6960 §4.2.2.3: one SingleResponse per
   * Request), echoing the nonce if there is one. One response has one signer, and a delegated
   * responder may only answer for its own CA's certificates (RFC 6960 §4.2.2.2), so every CertID
   * must be for the same issuer: a mix (a leaf and the intermediate, or leaves of two
   * intermediates) is `unauthorized`, as a CertID of an issuer we do not serve is. Not cached:
   * the combinations are the client's to choose.
   */
  async function answerEach(certIds: readonly CertId[], nonce: Uint8Array | null): Promise<OcspAnswer> {
    const signers = new Set(certIds.map(signerFor));
    const signer = signers.size === 1 ? [...signers][0]! : null;
    if (signer === null) return error('unauthorized');
    const statuses: OcspCertStatus[] = [];
    for (const certId of certIds) statuses.push(await statusOf(certId, signer));
    const signed = sign(certIds, statuses, signer, nonce);
    if (signed === null) return error('internalError');
    const outcome = statuses.reduce(
      (worst, s) => (RANK[s.kind] > RANK[worst] ? s.kind : worst),
      'good' as OcspCertStatus['kind'],
    );
    // A nonce makes the answer this request's alone (RFC 9654): no HTTP cache may keep it.
    return {
      body: signed.body,
      outcome,
      cache:
        nonce === null ? { thisUpdate: signed.thisUpdate, nextUpdate: signed.nextUpdate, etag: signed.etag } : null,
      hit: false,
    };
  }

  /** Signs the answer for one CertID without a nonce and keeps it, unless the serial is unknown. */
  async function answer(certId: CertId): Promise<OcspAnswer> {
    const started = epoch;
    const signer = signerFor(certId);
    if (signer === null) return error('unauthorized');
    const status = await statusOf(certId, signer);
    const signed = sign([certId], [status], signer, null);
    if (signed === null) return error('internalError');
    const result = {
      body: signed.body,
      outcome: status.kind,
      cache: { thisUpdate: signed.thisUpdate, nextUpdate: signed.nextUpdate, etag: signed.etag },
      hit: false,
    };
    // Unknown serials are not kept: anyone can ask for any number of them.
    if (status.kind !== 'unknown' && started === epoch)
      cache.set(keyOf(certId), { certId, serial: certId.serial, outcome: status.kind, ...signed });
    return result;
  }

  /** Re-signs a serial's cached responses at once, so a revocation is visible on the next lookup. */
  async function resign(serial: string): Promise<void> {
    for (const certId of invalidate(serial)) await answer(certId);
  }

  /**
   * Re-signs cached responses that have used 40% of their validity, before requests would find
   * them stale at 50% and pay for a signature themselves. Returns how many were re-signed.
   */
  async function refresh(limit = 10_000): Promise<number> {
    const now = clock.now().getTime();
    const due = cache
      .values()
      .filter((e) => now >= e.thisUpdate.getTime() + 0.4 * (e.nextUpdate.getTime() - e.thisUpdate.getTime()))
      .slice(0, limit);
    for (const e of due) await answer(e.certId);
    return due.length;
  }

  /**
   * Whether this responder is the one to answer a CertID: it names this intermediate as issuer,
   * or names the root and this intermediate's serial (the intermediate's own status).
   */
  function serves(certId: CertId): boolean {
    const signer = signerFor(certId);
    return signer === 'intermediate' || (signer === 'root' && certId.serial === issuer.certificate.serial);
  }

  return {
    respond,
    lookup,
    lookupKey,
    serves,
    resign,
    refresh,
    invalidate(serial: string): void {
      invalidate(serial);
    },
    reloadRootCrl,
    /** Drops everything (after the responder certificate rotates). */
    clear(): void {
      epoch++;
      cache.clear();
    },
    /** What the cache holds: entries, and the bytes they are counted at against the budget. */
    stats: () => cache.stats(),
  };
}

export type OcspResponderService = ReturnType<typeof createOcspResponder>;
