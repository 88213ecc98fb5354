import { calculateJwkThumbprint, type JWK } from 'jose';
import { randomBytes } from 'node:crypto';
import { eabSealContext, parseAcmeOptions, type AcmeOptions, type AcmeStore } from '@shortleaf/acme';
import { parsePolicy, type AuthorityStore, type KeySealer, type PolicyDocument } from '@shortleaf/authority';
import { generateKeyPair } from '@shortleaf/pki';
import { writeSecretFile } from './files.js';

async function checkNewProvisioner(store: AuthorityStore, name: string, policy: PolicyDocument): Promise<void> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name)) throw new Error('a provisioner name is letters, digits, dot, dash and underscore (max 63)');
  parsePolicy(policy);
  if ((await store.getProvisioner(name)) !== null) throw new Error(`a provisioner named ${name} already exists`);
}

/**
 * Creates an ACME provisioner, served at `/acme/NAME/directory`: the same name and lifetime policy
 * as a JWK provisioner, plus its ACME options (EAB, terms of service, per-account rate limits).
 */
export async function addAcmeProvisioner(store: AuthorityStore, opts: { name: string; policy: PolicyDocument; options: Partial<AcmeOptions> }): Promise<void> {
  await checkNewProvisioner(store, opts.name, opts.policy);
  parseAcmeOptions(opts.options);
  await store.addProvisioner({ name: opts.name, type: 'acme', publicJwk: null, policy: JSON.stringify(opts.policy), options: JSON.stringify(opts.options), createdAt: new Date() });
}

/**
 * Makes an External Account Binding key for an ACME provisioner (RFC 8555 §7.3.4): a random key
 * id and 256-bit HMAC key, sealed at rest. The HMAC key is returned once, for the operator to
 * hand to whoever registers the account; it binds exactly one account.
 */
export async function addEabKey(store: AuthorityStore & { acme: AcmeStore }, sealer: KeySealer, provisioner: string): Promise<{ kid: string; hmacKey: string }> {
  const row = await store.getProvisioner(provisioner);
  if (row === null || row.type !== 'acme') throw new Error(`there is no ACME provisioner named ${provisioner}`);
  const kid = randomBytes(12).toString('base64url');
  const key = randomBytes(32);
  await store.acme.createEabKey({ kid, provisioner, sealedKey: await sealer.seal(key, eabSealContext(provisioner, kid)), createdAt: new Date() });
  return { kid, hmacKey: key.toString('base64url') };
}

/**
 * Creates a JWK provisioner: a fresh key pair (ES256 by default, EdDSA with `kty: 'OKP'`), the
 * public half and policy stored in the database, the private half written to `keyOut` (0600).
 */
export async function addJwkProvisioner(store: AuthorityStore, opts: { name: string; keyOut: string; policy: PolicyDocument; kty?: 'EC' | 'OKP' }): Promise<{ kid: string }> {
  await checkNewProvisioner(store, opts.name, opts.policy);
  const alg = opts.kty === 'OKP' ? 'EdDSA' : 'ES256';
  const { privateKey, publicKey } = generateKeyPair(opts.kty === 'OKP' ? 'Ed25519' : 'EC-P256');
  const pub = publicKey.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(pub);
  const priv = { ...(privateKey.export({ format: 'jwk' }) as JWK), kid, alg, use: 'sig' };
  writeSecretFile(opts.keyOut, `${JSON.stringify({ provisioner: opts.name, ...priv }, null, 2)}\n`);
  await store.addProvisioner({ name: opts.name, type: 'jwk', publicJwk: JSON.stringify({ ...pub, kid, alg, use: 'sig' }), policy: JSON.stringify(opts.policy), createdAt: new Date() });
  return { kid };
}
