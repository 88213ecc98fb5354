import { randomBytes } from 'node:crypto';
import type { AcmeStore } from '@shortleaf/acme';
import type { AuthorityStore, KeySealer } from '@shortleaf/authority';
import { createLogger } from '../logger.js';
import { createAdmin, type Admin } from './admin.js';
import { recordingRevoker } from './revoke.js';

/**
 * The admin actions for one CLI verb: the wall clock, fresh randomness, warnings only on stderr,
 * and revocations recorded for a running server to pick up. The verb says who acts
 * (`cliOperator()` from the config module) and prints the result.
 */
export function cliAdmin(store: AuthorityStore & { acme: AcmeStore }, opts: { sealer?: KeySealer } = {}): Admin {
  const clock = { now: () => new Date() };
  const logger = createLogger('warn');
  return createAdmin({
    store,
    clock,
    random: (n) => new Uint8Array(randomBytes(n)),
    logger,
    revoke: recordingRevoker({ store, clock, logger }),
    ...(opts.sealer === undefined ? {} : { sealer: opts.sealer }),
  });
}
