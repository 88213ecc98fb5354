// OCSP and CRL as OpenSSL sees them. OpenSSL 3.0's exit codes for `ocsp` and `crl -verify` do not
// tell success from failure reliably, so everything here reads its text output instead.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { opensslResult } from './openssl.js';

/** Lower-case hex without leading zeros: how Shortleaf writes serials. */
export const normalizeSerial = (hex: string): string =>
  hex
    .trim()
    .toLowerCase()
    .replace(/^0x/, '')
    .replace(/:/g, '')
    .replace(/^0+(?=.)/, '');

/** The serial of the first certificate in a PEM file, normalised. */
export const serialOf = (pemFile: string): string =>
  normalizeSerial(new X509Certificate(readFileSync(pemFile)).serialNumber);

/** A date as OpenSSL prints it ("Nov 25 04:01:36 2026 GMT"). */
export function opensslDate(text: string): Date {
  const t = Date.parse(text.trim());
  if (Number.isNaN(t)) throw new Error(`not an OpenSSL date: ${JSON.stringify(text)}`);
  return new Date(t);
}

export interface OcspSingle {
  status: 'good' | 'revoked' | 'unknown';
  thisUpdate: Date | null;
  nextUpdate: Date | null;
  reason: string | null;
  revocationTime: Date | null;
}

export interface OcspResult {
  /** stdout then stderr of `openssl ocsp`. */
  output: string;
  /** "Response verify OK": the signature and the responder's authority checked out. */
  verified: boolean;
  /** OpenSSL sent a nonce and found none echoed. */
  nonceWarning: boolean;
  /** "unauthorized (6)" from "Responder Error: unauthorized (6)", or null for a successful response. */
  responderError: string | null;
  /** The status line for one `-cert FILE` / `-serial N` of the request, by the name OpenSSL prints. */
  single(name: string): OcspSingle | null;
}

/** Reads `openssl ocsp` text output (request, response and `-resp_text` alike). */
export function parseOcspOutput(output: string): OcspResult {
  const lines = output.split('\n');
  return {
    output,
    verified: /^Response verify OK$/m.test(output),
    nonceWarning: /WARNING: no nonce in response/.test(output),
    responderError: /Responder Error: (.+)$/m.exec(output)?.[1]?.trim() ?? null,
    single(name) {
      const at = lines.findIndex((l) => l.startsWith(`${name}: `));
      if (at < 0) return null;
      const status = lines[at]!.slice(name.length + 2).trim();
      if (status !== 'good' && status !== 'revoked' && status !== 'unknown')
        throw new Error(`unexpected OCSP status line: ${lines[at]}`);
      const fields = new Map<string, string>();
      for (const line of lines.slice(at + 1)) {
        const m = /^\s+([A-Za-z ]+): (.*)$/.exec(line);
        if (m === null) break;
        fields.set(m[1]!, m[2]!);
      }
      const date = (k: string) => (fields.has(k) ? opensslDate(fields.get(k)!) : null);
      return {
        status,
        thisUpdate: date('This Update'),
        nextUpdate: date('Next Update'),
        reason: fields.get('Reason') ?? null,
        revocationTime: date('Revocation Time'),
      };
    },
  };
}

/** Runs `openssl ocsp ARGS` and parses what it printed, whatever its exit code. */
export async function ocsp(args: readonly string[]): Promise<OcspResult> {
  const r = await opensslResult(['ocsp', ...args]);
  return parseOcspOutput(`${r.stdout}\n${r.stderr}`);
}

export interface CrlInfo {
  text: string;
  number: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  /** Revoked serials (normalised) and the reason text OpenSSL prints ("Key Compromise"), or null. */
  entries: Map<string, { revokedAt: Date; reason: string | null }>;
}

/** `openssl crl -text` of DER bytes or PEM text, parsed. */
export async function crlInfo(crl: Uint8Array | string): Promise<CrlInfo> {
  const r = await opensslResult(['crl', '-inform', typeof crl === 'string' ? 'PEM' : 'DER', '-noout', '-text'], crl);
  if (r.code !== 0) throw new Error(`openssl crl could not read the CRL: ${r.stderr}`);
  const text = r.stdout;
  const lines = text.split('\n');
  const numberAt = lines.findIndex((l) => l.trim().startsWith('X509v3 CRL Number'));
  const rawNumber = lines[numberAt + 1]?.trim() ?? '';
  if (numberAt < 0 || rawNumber === '') throw new Error(`the CRL has no CRL number:\n${text}`);
  const number = rawNumber.startsWith('0x') ? BigInt(rawNumber) : BigInt(rawNumber);
  const entries = new Map<string, { revokedAt: Date; reason: string | null }>();
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s+Serial Number: ([0-9A-Fa-f]+)$/.exec(lines[i]!);
    if (m === null) continue;
    const date = /Revocation Date: (.*)$/.exec(lines[i + 1] ?? '')?.[1];
    let reason: string | null = null;
    for (let j = i + 1; j < lines.length && !/Serial Number:|Signature Algorithm:/.test(lines[j]!); j++) {
      if (lines[j]!.includes('X509v3 CRL Reason Code')) reason = lines[j + 1]?.trim() ?? null;
    }
    entries.set(normalizeSerial(m[1]!), { revokedAt: opensslDate(date ?? ''), reason });
  }
  const field = (name: string) =>
    opensslDate(/^\s*(?:Last|Next) Update: (.*)$/m.exec(text.slice(text.indexOf(name)))?.[1] ?? '');
  return { text, number, thisUpdate: field('Last Update'), nextUpdate: field('Next Update'), entries };
}

/** `openssl crl -verify` against a CA file: true when OpenSSL prints "verify OK". */
export async function crlVerifies(crl: Uint8Array | string, caFile: string): Promise<{ ok: boolean; output: string }> {
  const r = await opensslResult(
    ['crl', '-inform', typeof crl === 'string' ? 'PEM' : 'DER', '-CAfile', caFile, '-verify', '-noout'],
    crl,
  );
  const output = `${r.stdout}\n${r.stderr}`;
  return { ok: /^verify OK$/m.test(output), output };
}

/** The seconds in a `Cache-Control: max-age=N` header, or null. */
export const maxAge = (cacheControl: string | undefined): number | null => {
  const m = /(?:^|,)\s*max-age=(\d+)\s*(?:,|$)/.exec(cacheControl ?? '');
  return m === null ? null : Number(m[1]);
};

/**
 * POSTs a body that claims `declaredBytes` (or is chunked) but sends only `sendBytes` of it, then
 * waits for the answer. A server that answers has refused without buffering the whole body.
 */
export function postPartial(
  url: string,
  opts: { contentType: string; declaredBytes?: number; sendBytes: number; timeoutMs: number },
): Promise<{ status: number; contentType: string; text: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-type': opts.contentType };
    if (opts.declaredBytes !== undefined) headers['content-length'] = opts.declaredBytes;
    const req = httpRequest(url, { method: 'POST', headers, agent: false });
    const timer = setTimeout(
      () => req.destroy(new Error(`no answer within ${opts.timeoutMs} ms after ${opts.sendBytes} bytes of the body`)),
      opts.timeoutMs,
    );
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        clearTimeout(timer);
        req.destroy();
        resolve({
          status: res.statusCode ?? 0,
          contentType: String(res.headers['content-type'] ?? ''),
          text: Buffer.concat(chunks).toString('utf8'),
          ms: Date.now() - started,
        });
      });
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    const chunk = Buffer.alloc(16 * 1024, 0x30);
    for (let sent = 0; sent < opts.sendBytes; sent += chunk.length)
      req.write(chunk.subarray(0, Math.min(chunk.length, opts.sendBytes - sent)));
    // The body is left unfinished on purpose: the server must not wait for the rest.
  });
}
