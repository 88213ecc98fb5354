import { eabSealContext, type AcmeStore } from '@shortleaf/acme';
import type { AuthorityStore, Clock, KeySealer } from '@shortleaf/authority';

/** An EAB key as an operator sees it: never its HMAC key, which is shown once, when it is made. */
export interface EabKeySummary {
  kid: string;
  createdAt: Date;
  /** The account it bound, or null while unused (a key binds exactly one account). */
  accountId: string | null;
}

/**
 * Makes an External Account Binding key for an ACME provisioner (RFC 8555 §7.3.4): a random key
 * id and 256-bit HMAC key, sealed at rest. The HMAC key is returned once, for the operator to
 * hand to whoever registers the account.
 */
export async function addEabKey(
  deps: { store: AuthorityStore & { acme: AcmeStore }; sealer: KeySealer; clock: Clock; random(n: number): Uint8Array },
  provisioner: string,
): Promise<{ kid: string; hmacKey: string }> {
  const row = await deps.store.getProvisioner(provisioner);
  if (row === null || row.type !== 'acme') throw new Error(`there is no ACME provisioner named ${provisioner}`);
  const kid = Buffer.from(deps.random(12)).toString('base64url');
  const key = deps.random(32);
  await deps.store.acme.createEabKey({
    kid,
    provisioner,
    sealedKey: await deps.sealer.seal(key, eabSealContext(provisioner, kid)),
    createdAt: deps.clock.now(),
  });
  return { kid, hmacKey: Buffer.from(key).toString('base64url') };
}

/** The EAB keys of a provisioner, oldest first, with the account each one bound. */
export async function listEabKeys(store: { acme: AcmeStore }, provisioner: string): Promise<EabKeySummary[]> {
  return (await store.acme.listEabKeys(provisioner)).map((k) => ({
    kid: k.kid,
    createdAt: k.createdAt,
    accountId: k.accountId,
  }));
}
