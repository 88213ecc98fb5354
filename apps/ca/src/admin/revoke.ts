import {
  createRevoker,
  type AuthorityStore,
  type Clock,
  type Logger,
  type Revoke,
  type RevocationResult,
} from '@shortleaf/authority';
import { operatorActor, type Operator } from './operator.js';

/**
 * A revoker for a process that is not the server (the CLI): it records the revocation and its
 * audit entry only. A running server notices the new row within a second (it watches for
 * revocations), re-signs OCSP for the serial and rebuilds its CRL. Inside the server, pass the
 * server's own revoker instead, which does that at once.
 */
export function recordingRevoker(deps: { store: AuthorityStore; clock: Clock; logger: Logger }): Revoke {
  return createRevoker({ ...deps, onRevoked: () => undefined });
}

/**
 * The operator's revocation. The operator is trusted with the key's fate (`keyProven`):
 * keyCompromise here reaches every certificate with the key and blocks it.
 */
export function revokeAsOperator(
  revoke: Revoke,
  operator: Operator,
  req: { serial: string; reason: string | undefined; requester: string },
): Promise<RevocationResult> {
  return revoke({
    serial: req.serial,
    reason: req.reason,
    actor: operatorActor(operator),
    requester: req.requester,
    keyProven: true,
  });
}
