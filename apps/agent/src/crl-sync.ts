import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import {
  decodePem,
  encodePem,
  isCrlSignedBy,
  parseCertificate,
  parseCrl,
  type CertificateInfo,
  type ParsedCrl,
} from '@shortleaf/pki';
import { writeFileAtomic } from './atomic-file.js';

/** Where one CRL is published, e.g. the status listener's `/crl` or `/root.crl` (DER, or PEM). */
export interface CrlSource {
  url: string;
}

export interface CrlSyncOptions {
  /** Fetched in order; the bundle holds one CRL per source, in this order. */
  sources: CrlSource[];
  /** DER certificates a CRL may be signed by (roots and intermediates); non-CA certificates are ignored. */
  caCertificates: Uint8Array[];
  /** The PEM bundle proxies read (nginx `ssl_crl`, HAProxy `crl-file`). */
  out: string;
  now(): Date;
  /** Per fetch, connection to last byte; default 10 s. */
  timeoutMs?: number;
}

/** What the sync remembers of one source: the validators and CRL it last accepted. Read-only. */
export interface CrlSourceState {
  readonly url: string;
  readonly etag: string | null;
  readonly lastModified: string | null;
  readonly number: bigint | null;
  readonly issuer: string | null;
  readonly nextUpdate: Date | null;
}

/** A snapshot for health reports and logs; the caller never feeds it back. */
export interface CrlSyncState {
  readonly sources: readonly CrlSourceState[];
}

export interface CrlSyncResult {
  /** Whether the bundle file was written (so the reload hook should run). */
  changed: boolean;
  /** The CRL now in the bundle for each source, in source order. */
  crls: Array<{ url: string; number: bigint; thisUpdate: Date; nextUpdate: Date; entries: number; issuer: string }>;
  /** Things worth logging that did not stop the sync, e.g. an existing bundle that could not be read. */
  warnings: string[];
}

export interface CrlSync {
  /** One round: fetch every source, verify, and write the bundle if anything changed. */
  sync(): Promise<CrlSyncResult>;
  state(): CrlSyncState;
}

export type CrlSyncErrorCode =
  /** The request failed: network error, timeout, a status other than 200/304, a body too large. */
  | 'fetchFailed'
  /** The body is not a CRL we can use (unparsable, no CRL number, no nextUpdate). */
  | 'badCrl'
  /** No configured CA certificate signed it (tampered, or from another CA). */
  | 'badSignature'
  /** Its nextUpdate has passed. */
  | 'stale'
  /** Its CRL number is lower than the one already in the bundle, or equal with other bytes. */
  | 'notNewer';

/** Why a sync refused a source; nothing was written. `url` names the source. */
export class CrlSyncError extends Error {
  override readonly name = 'CrlSyncError';
  readonly code: CrlSyncErrorCode;
  readonly url: string;

  constructor(code: CrlSyncErrorCode, url: string, reason: string, options?: { cause?: unknown }) {
    super(`${url}: ${reason}`, options);
    this.code = code;
    this.url = url;
  }
}

/** Large enough for a few million entries; anything bigger is not one of our CRLs. */
export const MAX_CRL_BYTES = 64 * 1024 * 1024;
const DEFAULT_TIMEOUT_MS = 10_000;
const BUNDLE_MODE = 0o644;

/** An accepted CRL, without its parsed entries: a 304 must not keep a million objects alive. */
interface Accepted {
  der: Uint8Array;
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  entries: number;
  /** The CA certificate that signed it: its subject for people, its name and key as the issuer's identity. */
  issuer: string;
  issuerKey: string;
  etag: string | null;
  lastModified: string | null;
}

type Fetched = { status: 304 } | { status: 200; body: Buffer; etag: string | null; lastModified: string | null };

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/** One issuer is one name with one key: a re-keyed CA with the same name starts its own numbering. */
const issuerKeyOf = (ca: CertificateInfo): string => `${hex(ca.subjectDer)}:${hex(ca.publicKey.spki)}`;
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(b);

/**
 * GETs one URL over node:http or node:https (system CAs), with a deadline covering connection,
 * headers and body, and a cap on the body. Resolves 200 with the body or 304; anything else is
 * `fetchFailed`.
 */
function fetchCrl(url: URL, headers: OutgoingHttpHeaders, timeoutMs: number): Promise<Fetched> {
  const failed = (reason: string, cause?: unknown) => new CrlSyncError('fetchFailed', url.href, reason, { cause });
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(url, { method: 'GET', headers }, (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      if (status === 304) {
        res.resume();
        settle(() => resolve({ status: 304 }));
        return;
      }
      if (status !== 200) {
        res.resume();
        settle(() => reject(failed(`the server answered HTTP ${status}`)));
        return;
      }
      const declared = Number(res.headers['content-length']);
      if (declared > MAX_CRL_BYTES) {
        req.destroy();
        settle(() => reject(failed(`the CRL is larger than ${MAX_CRL_BYTES} bytes`)));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_CRL_BYTES) {
          req.destroy();
          settle(() => reject(failed(`the CRL is larger than ${MAX_CRL_BYTES} bytes`)));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        const header = (name: string): string | null => {
          const v = res.headers[name];
          return typeof v === 'string' ? v : null;
        };
        settle(() =>
          resolve({
            status: 200,
            body: Buffer.concat(chunks),
            etag: header('etag'),
            lastModified: header('last-modified'),
          }),
        );
      });
      res.on('error', (err) => settle(() => reject(failed(`the response broke off: ${err.message}`, err))));
      res.on('close', () => settle(() => reject(failed('the connection closed before the CRL was complete'))));
    });
    const timer = setTimeout(() => {
      settle(() => reject(failed(`no complete answer within ${timeoutMs} ms`)));
      req.destroy();
    }, timeoutMs);
    req.on('error', (err) => settle(() => reject(failed(err.message, err))));
    req.end();
  });
}

/**
 * Keeps a PEM file of CRLs for proxies up to date from the CA's status listener. Each `sync()`
 * fetches every source with a conditional GET (If-None-Match / If-Modified-Since from the last
 * accepted response; 304 keeps that CRL), and checks each CRL: it parses, carries a CRL number
 * and a nextUpdate, is signed by one of the configured CA certificates, has not expired, and its
 * number is strictly greater than the one already in the bundle for the same issuer (or equal
 * with identical bytes: unchanged). Any failure throws a CrlSyncError and writes nothing. Only
 * when every source passes and the bundle differs from the file is the file replaced, atomically.
 * The baseline for "newer" is the bundle on disk, re-read each sync, and what this process has
 * accepted: an existing bundle that cannot be parsed, or whose CRLs no configured CA signed, is
 * treated as absent and reported in `warnings`, so a damaged file heals instead of wedging the
 * sync. Calls are serialized; the caller owns the schedule and the reload hook.
 */
export function createCrlSync(opts: CrlSyncOptions): CrlSync {
  if (opts.sources.length === 0) throw new Error('at least one CRL source is needed');
  const urls = opts.sources.map((s) => {
    let url: URL;
    try {
      url = new URL(s.url);
    } catch {
      throw new Error(`the CRL source ${JSON.stringify(s.url)} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new Error(`the CRL source ${s.url} is not http: or https:`);
    return url;
  });
  const cas = opts.caCertificates.map((der) => parseCertificate(der)).filter((c) => c.isCa);
  if (cas.length === 0) throw new Error('no CA certificate was given to verify CRLs with');
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let accepted: Array<Accepted | null> = opts.sources.map(() => null);
  let queue: Promise<unknown> = Promise.resolve();

  const signerOf = (crl: ParsedCrl): CertificateInfo | undefined => cas.find((ca) => isCrlSignedBy(crl, ca));

  /** Highest CRL number per issuer already published: in the file, or accepted by this process. */
  function readBaseline(warnings: string[]): {
    file: Buffer | null;
    baseline: Map<string, { number: bigint; der: Uint8Array }>;
  } {
    const baseline = new Map<string, { number: bigint; der: Uint8Array }>();
    const raise = (key: string, number: bigint, der: Uint8Array): void => {
      const seen = baseline.get(key);
      if (seen === undefined || number > seen.number) baseline.set(key, { number, der });
    };
    let file: Buffer | null = null;
    try {
      file = readFileSync(opts.out);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (file !== null) {
      try {
        const blocks = decodePem(file.toString('latin1')).filter((b) => b.label === 'X509 CRL');
        for (const block of blocks) {
          const crl = parseCrl(block.der);
          const ca = signerOf(crl);
          if (ca === undefined || crl.number === null) {
            warnings.push(
              `${opts.out} holds a CRL that no configured CA signed or without a CRL number; it is ignored and will be replaced`,
            );
            continue;
          }
          raise(issuerKeyOf(ca), crl.number, crl.der);
        }
      } catch (err) {
        baseline.clear();
        warnings.push(
          `${opts.out} cannot be read as a CRL bundle (${(err as Error).message}); it is treated as absent and will be replaced`,
        );
      }
    }
    for (const a of accepted) if (a !== null) raise(a.issuerKey, a.number, a.der);
    return { file, baseline };
  }

  function checkFresh(url: string, crl: { nextUpdate: Date }): void {
    const now = opts.now();
    if (crl.nextUpdate.getTime() <= now.getTime()) {
      throw new CrlSyncError(
        'stale',
        url,
        `the CRL's nextUpdate ${crl.nextUpdate.toISOString()} has passed (now ${now.toISOString()})`,
      );
    }
  }

  function verify(
    url: string,
    fetched: Fetched & { status: 200 },
    baseline: Map<string, { number: bigint; der: Uint8Array }>,
  ): Accepted {
    const { body } = fetched;
    let parsed: ParsedCrl;
    try {
      const pem = body.subarray(0, 64).toString('latin1').trimStart().startsWith('-----BEGIN X509 CRL');
      parsed = parseCrl(pem ? body.toString('latin1') : new Uint8Array(body));
    } catch (err) {
      throw new CrlSyncError('badCrl', url, `the response is not a CRL: ${(err as Error).message}`, { cause: err });
    }
    const { number, nextUpdate } = parsed;
    if (number === null)
      throw new CrlSyncError('badCrl', url, 'the CRL has no CRL number, so it cannot be ordered (RFC 5280 §5.2.3)');
    if (nextUpdate === null) throw new CrlSyncError('badCrl', url, 'the CRL has no nextUpdate (RFC 5280 §5.1.2.5)');
    const ca = signerOf(parsed);
    if (ca === undefined)
      throw new CrlSyncError('badSignature', url, 'the CRL is not signed by any of the configured CA certificates');
    checkFresh(url, { nextUpdate });
    const issuerKey = issuerKeyOf(ca);
    const seen = baseline.get(issuerKey);
    if (seen !== undefined && (number < seen.number || (number === seen.number && !sameBytes(parsed.der, seen.der)))) {
      const why = number < seen.number ? 'lower than' : 'the same as, with different content,';
      throw new CrlSyncError(
        'notNewer',
        url,
        `CRL number ${number} from ${ca.subject} is ${why} the ${seen.number} already published`,
      );
    }
    return {
      der: parsed.der,
      number,
      thisUpdate: parsed.thisUpdate,
      nextUpdate,
      entries: parsed.entries.length,
      issuer: ca.subject,
      issuerKey,
      etag: fetched.etag,
      lastModified: fetched.lastModified,
    };
  }

  async function syncOnce(): Promise<CrlSyncResult> {
    const warnings: string[] = [];
    const { file, baseline } = readBaseline(warnings);
    const settled = await Promise.allSettled(
      urls.map((url, i) => {
        const last = accepted[i] ?? null;
        const headers: OutgoingHttpHeaders = {
          accept: 'application/pkix-crl, application/x-pem-file;q=0.9, */*;q=0.1',
          'user-agent': 'shortleaf-agent',
        };
        if (last?.etag) headers['if-none-match'] = last.etag;
        if (last?.lastModified) headers['if-modified-since'] = last.lastModified;
        return fetchCrl(url, headers, timeoutMs);
      }),
    );
    const next = settled.map((outcome, i): Accepted => {
      const url = opts.sources[i]!.url;
      if (outcome.status === 'rejected') throw outcome.reason;
      const fetched = outcome.value;
      if (fetched.status === 200) return verify(url, fetched, baseline);
      const last = accepted[i] ?? null;
      if (last === null)
        throw new CrlSyncError('fetchFailed', url, 'the server answered 304 Not Modified to an unconditional request');
      // The kept CRL still has to be current: a CA that stopped publishing must not go unnoticed.
      checkFresh(url, last);
      return last;
    });
    const bundle = Buffer.from(next.map((a) => encodePem('X509 CRL', a.der)).join(''), 'latin1');
    const changed = file === null || !file.equals(bundle);
    if (changed) writeFileAtomic(opts.out, bundle, BUNDLE_MODE);
    accepted = next;
    return {
      changed,
      crls: next.map((a, i) => ({
        url: opts.sources[i]!.url,
        number: a.number,
        thisUpdate: a.thisUpdate,
        nextUpdate: a.nextUpdate,
        entries: a.entries,
        issuer: a.issuer,
      })),
      warnings,
    };
  }

  return {
    sync() {
      const run = queue.then(syncOnce, syncOnce);
      queue = run.catch(() => undefined);
      return run;
    },
    state() {
      return {
        sources: opts.sources.map((s, i) => {
          const a = accepted[i] ?? null;
          return {
            url: s.url,
            etag: a?.etag ?? null,
            lastModified: a?.lastModified ?? null,
            number: a?.number ?? null,
            issuer: a?.issuer ?? null,
            nextUpdate: a?.nextUpdate ?? null,
          };
        }),
      };
    },
  };
}
