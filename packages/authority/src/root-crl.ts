import { createHash } from 'node:crypto';
import { isCrlSignedBy, parseCertificate, parseCrl, type ParsedCrl } from '@shortleaf/pki';
import { AuthorityError } from './errors.js';
import type { AuthorityStore, Clock, RootCrlRow } from './ports.js';

/** The store's key for a root: SHA-256 of its DER, lower-case hex. */
export const rootFingerprint = (der: Uint8Array): string => createHash('sha256').update(der).digest('hex');

/**
 * Imports a root CRL signed offline: it must be signed by one of our roots and carry a higher
 * CRL number than the last one imported for that root, so an old CRL cannot be replayed.
 */
export async function importRootCrl(
  store: AuthorityStore,
  clock: Clock,
  input: Uint8Array | string,
): Promise<{ crl: ParsedCrl; row: RootCrlRow }> {
  let crl: ParsedCrl;
  try {
    crl = parseCrl(input);
  } catch (cause) {
    throw new AuthorityError('badCrl', `not a CRL: ${(cause as Error).message}`, { cause });
  }
  const roots = (await store.listRoots()).map((der) => parseCertificate(der));
  const root = roots.find((r) => isCrlSignedBy(crl, r));
  if (root === undefined) throw new AuthorityError('badCrl', 'the CRL is not signed by any root this CA trusts');
  if (crl.number === null || crl.nextUpdate === null)
    throw new AuthorityError('badCrl', 'a root CRL needs a CRL number and a nextUpdate');
  const fingerprint = rootFingerprint(root.der);
  const latest = await store.revocations.latestRootCrl(fingerprint);
  if (latest !== null && crl.number <= latest.number) {
    throw new AuthorityError('badCrl', `CRL number ${crl.number} is not newer than the imported ${latest.number}`);
  }
  const row: RootCrlRow = {
    rootFingerprint: fingerprint,
    number: crl.number,
    thisUpdate: crl.thisUpdate,
    nextUpdate: crl.nextUpdate,
    der: crl.der,
    importedAt: clock.now(),
  };
  await store.revocations.importRootCrl(row);
  return { crl, row };
}

/** The newest imported CRL of the root that issued the active intermediate. */
export async function latestRootCrl(store: AuthorityStore, rootDer: Uint8Array): Promise<RootCrlRow | null> {
  return store.revocations.latestRootCrl(rootFingerprint(rootDer));
}

/**
 * Warnings about the intermediate itself: revoked by the root's CRL (every chain through it now
 * fails, so new certificates are useless until another intermediate is imported), or near the
 * end of its validity, which caps every leaf's notAfter.
 */
export function issuerWarnings(
  intermediate: { serial: string; notAfter: Date },
  rootCrl: ParsedCrl | null,
  now: Date,
  warnBeforeMs: number,
): string[] {
  const warnings: string[] = [];
  const revoked = rootCrl?.entries.find((e) => e.serial === intermediate.serial);
  if (revoked !== undefined) {
    warnings.push(
      `the root revoked the active intermediate (${revoked.reason}) at ${revoked.revokedAt.toISOString()}: certificates it signs no longer verify; import a new intermediate`,
    );
  }
  const left = intermediate.notAfter.getTime() - now.getTime();
  if (left <= warnBeforeMs)
    warnings.push(
      `the active intermediate expires at ${intermediate.notAfter.toISOString()}: leaves are capped at that time; import a new intermediate`,
    );
  return warnings;
}

/**
 * Warnings about the root CRL: proxies that check the whole chain refuse every client once it
 * lapses, so an operator must hear about it well before its nextUpdate.
 */
export function rootCrlWarnings(row: RootCrlRow | null, now: Date, warnBeforeMs: number): string[] {
  if (row === null)
    return [
      'no root CRL has been imported: proxies that check the whole chain (crl_check_all, nginx ssl_crl) will refuse every client; run `shortleaf root crl` offline and `shortleaf root-crl import`',
    ];
  const left = row.nextUpdate.getTime() - now.getTime();
  if (left <= 0)
    return [
      `the root CRL expired at ${row.nextUpdate.toISOString()}: proxies that check the whole chain refuse every client until a new one is imported`,
    ];
  if (left <= warnBeforeMs)
    return [
      `the root CRL expires at ${row.nextUpdate.toISOString()} (in ${Math.ceil(left / 3_600_000)} h): sign a new one offline and import it`,
    ];
  return [];
}
