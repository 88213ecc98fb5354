import { request } from 'node:https';
import type { CertificateInfo } from '@shortleaf/pki';

/** RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(serial as DER integer content). */
export function certId(cert: Pick<CertificateInfo, 'authorityKeyIdentifier' | 'serial'>): string | null {
  if (cert.authorityKeyIdentifier === null) return null;
  let hex = cert.serial.length % 2 === 1 ? `0${cert.serial}` : cert.serial;
  // A DER INTEGER with the top bit set needs a leading zero octet to stay positive.
  if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = `00${hex}`;
  return `${Buffer.from(cert.authorityKeyIdentifier).toString('base64url')}.${Buffer.from(hex, 'hex').toString('base64url')}`;
}

/**
 * Asks the CA's renewalInfo endpoint for the suggested window. Any failure (no ACME, unknown
 * certificate, timeout) returns null and the agent falls back to its own schedule.
 */
export function fetchRenewalWindow(
  url: string,
  rootPem: string,
  timeoutMs = 10_000,
): Promise<{ start: Date; end: Date } | null> {
  return new Promise((resolve) => {
    const req = request(url, { ca: rootPem, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.length < 64 && chunks.push(d));
      res.on('end', () => {
        if (res.statusCode !== 200) return resolve(null);
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
            suggestedWindow?: { start?: string; end?: string };
          };
          const start = new Date(body.suggestedWindow?.start ?? '');
          const end = new Date(body.suggestedWindow?.end ?? '');
          resolve(Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) ? null : { start, end });
        } catch {
          resolve(null);
        }
      });
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
    req.end();
  });
}
