import { Buffer } from 'node:buffer';
import { createHash } from 'node:crypto';
import {
  PkiError,
  buildOcspResponse,
  issuerHashes,
  ocspErrorResponse,
  parseCrl,
  parseOcspRequest,
  reasonName,
  reasonCode,
  type CertId,
  type OcspCertStatus,
  type OcspHash,
} from '@shortleaf/pki';
import type { LoadedIssuer } from './issuer.js';
import type { ManagedResponder } from './ocsp-signers.js';
import type { AuthorityStore, Clock, Logger } from './ports.js';
import { rootFingerprint } from './root-crl.js';

export type OcspOutcome = 'good' | 'revoked' | 'unknown' | 'malformedRequest' | 'unauthorized' | 'internalError';

/** What the HTTP layer needs to answer: the bytes, and for cacheable answers their validity. */
export interface OcspAnswer {
  body: Uint8Array;
  outcome: OcspOutcome;
  /** Set for signed responses without a nonce, which any cache may keep until nextUpdate. */
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
}

const HASHES: readonly OcspHash[] = ['sha1', 'sha256', 'sha384', 'sha512'];

// The CertID's exact bytes: SHA-1 and SHA-256 forms of one serial are different responses.
const cacheKey = (certId: CertId): string => Buffer.from(certId.der).toString('base64');

interface CachedResponse {
  certId: CertId;
  serial: string;
  body: Uint8Array;
  outcome: OcspOutcome;
  thisUpdate: Date;
  nextUpdate: Date;
  etag: string;
}

/**
 * The RFC 6960 responder, with RFC 5019's pre-signed profile: a response without a nonce is
 * signed once per CertID and served from memory until half its validity has passed, so the hot
 * path is a lookup; a revocation drops and re-signs the serial's responses at once. A nonce
 * (RFC 9654) needs a fresh signature, echoing it. The signer is chosen by the CertID's issuer:
 * the intermediate's delegated responder for leaves, the root-delegated one for the intermediate.
 */
export function createOcspResponder(opts: OcspResponderOptions) {
  const { store, issuer, clock, logger } = opts;
  const cache = new Map<string, CachedResponse>();
  const bySerial = new Map<string, Set<string>>();
  // Request bytes (as a latin1 string) → CertID cache key: lets a repeated request skip parsing.
  // Entries only point into `cache`, so an invalidated response is never found through them.
  const byRequest = new Map<string, string>();
  // Bumped by every invalidation of a serial. An answer whose status was read under an older
  // generation is still returned but never cached: a revocation landing while a request was
  // reading the database must not be overwritten by the "good" that request signed.
  const generations = new Map<string, number>();
  const intermediateHashes = new Map(HASHES.map((h) => [h, issuerHashes(issuer.certificate, h)]));
  const rootHashes = issuer.roots.map((root) => ({ root, hashes: new Map(HASHES.map((h) => [h, issuerHashes(root, h)])) }));
  let rootCrl: { number: bigint; revoked: Map<string, { revokedAt: Date; reason: string }> } | null = null;

  const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(b);
  const matches = (id: CertId, h: { nameHash: Uint8Array; keyHash: Uint8Array } | undefined) => h !== undefined && same(id.issuerNameHash, h.nameHash) && same(id.issuerKeyHash, h.keyHash);
  const wholeSecond = (d: Date) => new Date(Math.floor(d.getTime() / 1000) * 1000);

  /** Reloads the root CRL the intermediate's status comes from (after an import). */
  async function reloadRootCrl(): Promise<void> {
    const root = issuer.roots.find((r) => same(r.subjectDer, issuer.certificate.issuerDer));
    if (root === undefined) return;
    const row = await store.revocations.latestRootCrl(rootFingerprint(root.der));
    if (row === null || (rootCrl !== null && row.number === rootCrl.number)) return;
    const parsed = parseCrl(row.der);
    rootCrl = { number: row.number, revoked: new Map(parsed.entries.map((e) => [e.serial, { revokedAt: e.revokedAt, reason: e.reason }])) };
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
    return entry === undefined ? { kind: 'good' } : { kind: 'revoked', revokedAt: entry.revokedAt, reason: reasonName(reasonCode(entry.reason)) };
  }

  function sign(certId: CertId, status: OcspCertStatus, responder: ManagedResponder, nonce: Uint8Array | null): CachedResponse {
    const now = wholeSecond(clock.now());
    const nextUpdate = wholeSecond(new Date(Math.min(now.getTime() + opts.validityMs, responder.certificate.notAfter.getTime())));
    const body = buildOcspResponse({ responder, producedAt: now, responses: [{ certId, status, thisUpdate: now, nextUpdate }], nonce });
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    return { certId, serial: certId.serial, body, outcome: status.kind, thisUpdate: now, nextUpdate, etag };
  }

  function remember(key: string, entry: CachedResponse): void {
    if (cache.size >= opts.maxCacheEntries && !cache.has(key)) {
      const oldest = cache.keys().next().value as string;
      forget(oldest);
    }
    cache.delete(key); // re-insert at the end: eviction takes the least recently signed
    cache.set(key, entry);
    let keys = bySerial.get(entry.serial);
    if (keys === undefined) bySerial.set(entry.serial, (keys = new Set()));
    keys.add(key);
  }

  function forget(key: string): void {
    const entry = cache.get(key);
    if (entry === undefined) return;
    cache.delete(key);
    const keys = bySerial.get(entry.serial);
    keys?.delete(key);
    if (keys?.size === 0) bySerial.delete(entry.serial);
  }

  /** Drops every cached response for a serial; the next request re-reads its status. */
  function invalidate(serial: string): void {
    generations.set(serial, (generations.get(serial) ?? 0) + 1);
    for (const key of [...(bySerial.get(serial) ?? [])]) forget(key);
  }

  const fresh = (e: CachedResponse, now: number) => now < e.thisUpdate.getTime() + (e.nextUpdate.getTime() - e.thisUpdate.getTime()) / 2;
  const toAnswer = (e: CachedResponse, hit: boolean): OcspAnswer => ({ body: e.body, outcome: e.outcome, cache: { thisUpdate: e.thisUpdate, nextUpdate: e.nextUpdate, etag: e.etag }, hit });
  const error = (outcome: 'malformedRequest' | 'unauthorized' | 'internalError'): OcspAnswer => ({ body: ocspErrorResponse(outcome), outcome, cache: null, hit: false });

  /**
   * The hot path: answers a request seen before from the cache, without parsing it, or returns
   * null when it needs the full path (first sight, a nonce, a stale or invalidated response).
   */
  function lookup(der: Uint8Array): OcspAnswer | null {
    const key = byRequest.get(Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('latin1'));
    const hit = key === undefined ? undefined : cache.get(key);
    return hit !== undefined && fresh(hit, clock.now().getTime()) ? toAnswer(hit, true) : null;
  }

  async function respond(der: Uint8Array): Promise<OcspAnswer> {
    const fast = lookup(der);
    if (fast !== null) return fast;
    let request;
    try {
      request = parseOcspRequest(der);
    } catch (err) {
      if (err instanceof PkiError) return error('malformedRequest');
      throw err;
    }
    const certId = request.certIds[0]!;
    if (request.nonce === null) {
      const key = cacheKey(certId);
      const hit = cache.get(key);
      const result = hit !== undefined && fresh(hit, clock.now().getTime()) ? toAnswer(hit, true) : await answer(certId, null);
      if (cache.has(key)) rememberRequest(der, key);
      return result;
    }
    return answer(certId, request.nonce);
  }

  function rememberRequest(der: Uint8Array, key: string): void {
    // Bounded like the cache; dropping the whole index only costs re-parsing.
    if (byRequest.size >= 2 * opts.maxCacheEntries) byRequest.clear();
    byRequest.set(Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('latin1'), key);
  }

  async function answer(certId: CertId, nonce: Uint8Array | null): Promise<OcspAnswer> {
    const generation = generations.get(certId.serial) ?? 0;
    let status: OcspCertStatus;
    let responder: ManagedResponder;
    if (matches(certId, intermediateHashes.get(certId.hash))) {
      status = await leafStatus(certId.serial);
      responder = opts.intermediateResponder();
    } else if (opts.rootResponder !== null && rootHashes.some((r) => same(r.root.subjectDer, issuer.certificate.issuerDer) && matches(certId, r.hashes.get(certId.hash)))) {
      status = intermediateStatus(certId.serial);
      responder = opts.rootResponder;
    } else {
      return error('unauthorized');
    }
    const entry = sign(certId, status, responder, nonce);
    if (nonce !== null) return { ...toAnswer(entry, false), cache: null };
    // Unknown serials are not kept: anyone can ask for any number of them.
    if (status.kind !== 'unknown' && generation === (generations.get(certId.serial) ?? 0)) remember(cacheKey(certId), entry);
    return toAnswer(entry, false);
  }

  /** Re-signs a serial's cached responses at once, so a revocation is visible on the next lookup. */
  async function resign(serial: string): Promise<void> {
    const certIds = [...(bySerial.get(serial) ?? [])].map((key) => cache.get(key)!.certId);
    invalidate(serial);
    for (const certId of certIds) await answer(certId, null);
  }

  /**
   * Re-signs cached responses that have used 40% of their validity, before requests would find
   * them stale at 50% and pay for a signature themselves. Returns how many were re-signed.
   */
  async function refresh(limit = 10_000): Promise<number> {
    const now = clock.now().getTime();
    const due = [...cache.values()].filter((e) => now >= e.thisUpdate.getTime() + 0.4 * (e.nextUpdate.getTime() - e.thisUpdate.getTime())).slice(0, limit);
    for (const e of due) await answer(e.certId, null);
    return due.length;
  }

  /**
   * Whether this responder is the one to answer a CertID: it names this intermediate as issuer,
   * or names the root and this intermediate's serial (the intermediate's own status).
   */
  function serves(certId: CertId): boolean {
    if (matches(certId, intermediateHashes.get(certId.hash))) return true;
    return opts.rootResponder !== null && certId.serial === issuer.certificate.serial && rootHashes.some((r) => matches(certId, r.hashes.get(certId.hash)));
  }

  return {
    respond,
    lookup,
    serves,
    resign,
    refresh,
    invalidate,
    reloadRootCrl,
    /** Drops everything (after the responder certificate rotates). */
    clear(): void {
      cache.clear();
      bySerial.clear();
      byRequest.clear();
    },
    stats: () => ({ entries: cache.size }),
  };
}

export type OcspResponderService = ReturnType<typeof createOcspResponder>;

