import { calculateJwkThumbprint, type JWK } from 'jose';
import { parsePolicy, type AuthorityStore, type PolicyDocument } from '@shortleaf/authority';
import { generateKeyPair } from '@shortleaf/pki';
import { writeSecretFile } from './files.js';

/**
 * Creates a JWK provisioner: a fresh key pair (ES256 by default, EdDSA with `kty: 'OKP'`), the
 * public half and policy stored in the database, the private half written to `keyOut` (0600).
 */
export async function addJwkProvisioner(store: AuthorityStore, opts: { name: string; keyOut: string; policy: PolicyDocument; kty?: 'EC' | 'OKP' }): Promise<{ kid: string }> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(opts.name)) throw new Error('a provisioner name is letters, digits, dot, dash and underscore (max 63)');
  parsePolicy(opts.policy);
  if ((await store.getProvisioner(opts.name)) !== null) throw new Error(`a provisioner named ${opts.name} already exists`);
  const alg = opts.kty === 'OKP' ? 'EdDSA' : 'ES256';
  const { privateKey, publicKey } = generateKeyPair(opts.kty === 'OKP' ? 'Ed25519' : 'EC-P256');
  const pub = publicKey.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(pub);
  const priv = { ...(privateKey.export({ format: 'jwk' }) as JWK), kid, alg, use: 'sig' };
  writeSecretFile(opts.keyOut, `${JSON.stringify({ provisioner: opts.name, ...priv }, null, 2)}\n`);
  await store.addProvisioner({ name: opts.name, type: 'jwk', publicJwk: JSON.stringify({ ...pub, kid, alg, use: 'sig' }), policy: JSON.stringify(opts.policy), createdAt: new Date() });
  return { kid };
}
