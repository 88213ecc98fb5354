import { parseDuration } from '@shortleaf/authority';
import { out, parse, UsageError } from '../cli.js';
import { LOCATION_FLAGS, openStore, storeLocation } from '../data.js';

/** The actions the authority and the CLI record. */
const ACTIONS = ['issue', 'renew', 'revoke', 'restore'] as const;

/**
 * `shortleaf audit --data DIR | --database URL [--since 1h] [--action issue|renew|revoke|restore] [--limit N] [--json]`:
 * the audit log, oldest first. Read-only, so it is safe beside running servers. `--json` prints
 * one JSON object per line, for `jq` and log shippers.
 */
export async function auditCommand(args: string[]): Promise<void> {
  const { values } = parse(args, {
    ...LOCATION_FLAGS,
    since: { type: 'string' },
    action: { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'boolean' },
  });
  const location = storeLocation(values);
  const action = values.action;
  if (action !== undefined && !(ACTIONS as readonly string[]).includes(action))
    throw new UsageError(`--action must be one of ${ACTIONS.join(', ')}, got "${action}"`);
  let since: Date | undefined;
  if (values.since !== undefined) {
    try {
      since = new Date(Date.now() - parseDuration(values.since));
    } catch (err) {
      throw new UsageError(`--since: ${(err as Error).message}`);
    }
  }
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0))
    throw new UsageError(`--limit must be a whole number, got "${values.limit}"`);
  const store = await openStore(location, { readonly: true });
  try {
    const entries = await store.listAudit({
      ...(since ? { since } : {}),
      ...(action ? { action } : {}),
      ...(limit === undefined ? {} : { limit }),
    });
    if (values.json) {
      for (const e of entries)
        out(
          JSON.stringify({
            at: e.at.toISOString(),
            action: e.action,
            actor: e.actor,
            serial: e.serial,
            detail: e.detail,
          }),
        );
      return;
    }
    out('AT\tACTION\tACTOR\tSERIAL\tDETAIL');
    for (const e of entries)
      out(`${e.at.toISOString()}\t${e.action}\t${e.actor}\t${e.serial ?? '-'}\t${JSON.stringify(e.detail)}`);
  } finally {
    await store.close();
  }
}
