import { readFileSync } from 'node:fs';
import { importRootCrl, parseDuration } from '@shortleaf/authority';
import { cliAdmin } from '../admin/index.js';
import { out, parse, UsageError } from '../cli.js';
import { cliOperator } from '../config.js';
import { LOCATION_FLAGS, openStore, storeLocation } from '../data.js';

const clock = { now: () => new Date() };

/**
 * `shortleaf revoke SERIAL --reason R --data DIR | --database URL`: the operator's revocation,
 * written straight to the database. Running servers notice it within a second (they watch for new
 * revocations), re-sign OCSP for the serial and rebuild the CRL.
 */
export async function revokeCommand(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { ...LOCATION_FLAGS, reason: { type: 'string' } });
  const serial = positionals[0];
  if (serial === undefined)
    throw new UsageError('usage: shortleaf revoke SERIAL --reason keyCompromise (--data DIR | --database URL)');
  const store = await openStore(storeLocation(values));
  try {
    // The operator is trusted with the key's fate: keyCompromise here reaches every certificate with the key.
    const r = await cliAdmin(store).revoke(cliOperator(), {
      serial,
      reason: values.reason,
      requester: 'shortleaf revoke',
    });
    if (r.alreadyRevoked)
      out(
        `${r.serial} was already revoked (${r.reason}) at ${r.revokedAt.toISOString()}; only keyCompromise can replace that reason`,
      );
    else if (r.previousReason !== undefined)
      out(
        `${r.serial}: reason changed from ${r.previousReason} to ${r.reason}; revoked at ${r.revokedAt.toISOString()} as before`,
      );
    else out(`revoked ${r.serial} (${r.reason}) at ${r.revokedAt.toISOString()}`);
    // keyCompromise and the reasons about the holder reach its lineage (and the key's other certificates).
    for (const serial of r.also)
      out(
        `also revoked ${serial} (${r.reason}): ${r.reason === 'keyCompromise' ? 'same lineage or same key' : 'same lineage'}`,
      );
    if (r.keyBlocked) out('the key is blocked: no certificate will be issued for it again');
  } finally {
    await store.close();
  }
}

/**
 * `shortleaf certs list --data DIR [--revoked] [--expiring 24h] [--undelivered]`: what this CA has
 * issued. A serial recorded before signing whose certificate was never stored (the server died or
 * the disk failed between the two steps) is `undelivered`: no client can have received it.
 */
export async function certsCommand(args: string[]): Promise<void> {
  const [verb, ...rest] = args;
  if (verb !== 'list')
    throw new UsageError(
      'usage: shortleaf certs list (--data DIR | --database URL) [--revoked] [--expiring 24h] [--undelivered]',
    );
  const { values } = parse(rest, {
    ...LOCATION_FLAGS,
    revoked: { type: 'boolean' },
    expiring: { type: 'string' },
    undelivered: { type: 'boolean' },
  });
  const store = await openStore(storeLocation(values));
  try {
    const revoked = new Map((await store.revocations.list()).map((r) => [r.serial, r]));
    const now = Date.now();
    const horizon = values.expiring === undefined ? null : now + parseDuration(values.expiring);
    const certs = await store.listCertificates({
      ...(horizon === null ? {} : { expiringBefore: new Date(horizon) }),
      ...(values.undelivered ? { status: 'reserved' as const } : {}),
    });
    out('SERIAL\tSTATUS\tNOT AFTER\tPROVISIONER\tNAMES');
    for (const c of certs) {
      const r = revoked.get(c.serial);
      if (values.revoked && r === undefined) continue;
      if (horizon !== null && (c.notAfter.getTime() < now || r !== undefined || c.status === 'reserved')) continue;
      const status =
        c.status === 'reserved'
          ? 'undelivered'
          : r !== undefined
            ? `revoked:${r.reason}`
            : c.notAfter.getTime() < now
              ? 'expired'
              : 'valid';
      out(`${c.serial}\t${status}\t${c.notAfter.toISOString()}\t${c.provisioner}\t${c.names.join(',')}`);
    }
  } finally {
    await store.close();
  }
}

/** `shortleaf root-crl import FILE --data DIR`: brings a CRL the offline root signed to the server. */
export async function rootCrlCommand(args: string[]): Promise<void> {
  const [verb, ...rest] = args;
  const usage = 'usage: shortleaf root-crl import FILE (--data DIR | --database URL)';
  if (verb !== 'import') throw new UsageError(usage);
  const { values, positionals } = parse(rest, LOCATION_FLAGS);
  const file = positionals[0];
  if (file === undefined) throw new UsageError(usage);
  const bytes = readFileSync(file);
  const input =
    bytes.subarray(0, 11).toString('latin1') === '-----BEGIN ' ? bytes.toString('utf8') : new Uint8Array(bytes);
  const store = await openStore(storeLocation(values));
  try {
    const { row, crl } = await importRootCrl(store, clock, input);
    out(
      `imported root CRL number ${row.number} (${crl.entries.length} entries), next update ${row.nextUpdate.toISOString()}`,
    );
  } finally {
    await store.close();
  }
}
