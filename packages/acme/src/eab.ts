import { flattenedVerify, type JWK } from 'jose';
import type { AcmeServices } from './context.js';
import { AcmeError } from './errors.js';
import { parseJws, thumbprint } from './jws.js';

/** HMAC algorithms an External Account Binding may use (RFC 8555 §7.3.4). */
const EAB_ALGORITHMS = ['HS256', 'HS384', 'HS512'];

/** The AES-GCM associated data an EAB key is sealed under, so a sealed blob cannot be moved. */
export const eabSealContext = (provisioner: string, kid: string): string => `acme-eab:${provisioner}:${kid}`;

/**
 * Checks an External Account Binding (RFC 8555 §7.3.4): a JWS over the account's public key,
 * MACed with a key the CA handed out, whose protected header names that key (`kid`) and the
 * newAccount URL. Returns the key id to bind; binding is single-use and done with the account
 * insert, in one transaction.
 */
export async function verifyExternalAccountBinding(
  services: Pick<AcmeServices, 'store' | 'sealer'>,
  input: { binding: unknown; provisioner: string; newAccountUrl: string; accountJwk: JWK },
): Promise<string> {
  const jws = parseJws(input.binding, 'externalAccountBinding');
  const header = jws.header as unknown as Record<string, unknown>;
  if (typeof header.alg !== 'string' || !EAB_ALGORITHMS.includes(header.alg))
    throw new AcmeError('malformed', `externalAccountBinding must use one of ${EAB_ALGORITHMS.join(', ')}`);
  if (header.nonce !== undefined) throw new AcmeError('malformed', 'externalAccountBinding must not carry a nonce');
  if (header.url !== input.newAccountUrl)
    throw new AcmeError('unauthorized', 'externalAccountBinding must name the newAccount URL in "url"');
  if (typeof header.kid !== 'string' || header.kid === '')
    throw new AcmeError('malformed', 'externalAccountBinding must name its key in "kid"');
  const key = await services.store.getEabKey(header.kid);
  if (key === null || key.provisioner !== input.provisioner)
    throw new AcmeError(
      'unauthorized',
      `the external account key ${JSON.stringify(header.kid)} is not known to this provisioner`,
    );
  if (key.accountId !== null)
    throw new AcmeError('unauthorized', `the external account key ${header.kid} is already bound to an account`);
  const secret = await services.sealer.unseal(key.sealedKey, eabSealContext(key.provisioner, key.kid));
  let payload: Uint8Array;
  try {
    ({ payload } = await flattenedVerify(jws.input, secret, { algorithms: EAB_ALGORITHMS }));
  } catch (cause) {
    throw new AcmeError('unauthorized', 'the externalAccountBinding MAC does not verify with that key', { cause });
  }
  let bound: unknown;
  try {
    bound = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    throw new AcmeError('malformed', 'the externalAccountBinding payload must be the account JWK');
  }
  if (
    typeof bound !== 'object' ||
    bound === null ||
    (await thumbprint(bound as JWK)) !== (await thumbprint(input.accountJwk))
  ) {
    throw new AcmeError(
      'unauthorized',
      'the externalAccountBinding binds a different key than the one signing this request',
    );
  }
  return key.kid;
}
