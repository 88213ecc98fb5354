import { calculateJwkThumbprint, type JWK } from 'jose';
import { parseAcmeOptions, type AcmeOptions } from '@shortleaf/acme';
import {
  BUILT_IN_PROVISIONERS,
  acmeProvisioner,
  createProvisionerRegistry,
  parsePolicy,
  type AuthorityStore,
  type PolicyDocument,
  type ProvisionerRegistry,
} from '@shortleaf/authority';
import { generateKeyPair } from '@shortleaf/pki';
import { writeSecretFile } from './files.js';

/**
 * The provisioner types this CA knows: the authority's own table (one list of types), with ACME's
 * options checked by the ACME front door's parser, so a provisioner is refused at `add` for what
 * the door would refuse.
 */
export const PROVISIONER_TYPES: ProvisionerRegistry = createProvisionerRegistry(
  BUILT_IN_PROVISIONERS.types.map((t) => (t.type === 'acme' ? acmeProvisioner(parseAcmeOptions) : t)),
);

/** What creating a provisioner needs of the store. */
export type ProvisionerStore = Pick<AuthorityStore, 'getProvisioner' | 'addProvisioner'>;

/** What a new provisioner is: its name, type, policy, and what its type is made of. */
export interface NewProvisionerInput {
  name: string;
  /** A type the registry knows (`jwk`, `acme`); anything else is refused with `unknownProvisionerType`. */
  type: string;
  policy: PolicyDocument;
  /** The public key its tokens are signed with, for a type that has one (JWK). */
  publicJwk?: string | null;
  /** Its type's options as JSON-able data, stored as given; `{}` when absent. */
  options?: unknown;
}

/** Checks everything about a new provisioner before anything is written: name, policy, type, options. */
async function checkNewProvisioner(store: ProvisionerStore, input: NewProvisionerInput): Promise<void> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(input.name))
    throw new Error('a provisioner name is letters, digits, dot, dash and underscore (max 63)');
  parsePolicy(input.policy);
  if ((await store.getProvisioner(input.name)) !== null)
    throw new Error(`a provisioner named ${input.name} already exists`);
  PROVISIONER_TYPES.get(input.type).parse({ publicJwk: input.publicJwk ?? null, options: input.options ?? {} });
}

async function storeProvisioner(store: ProvisionerStore, input: NewProvisionerInput): Promise<void> {
  await store.addProvisioner({
    name: input.name,
    type: input.type,
    publicJwk: input.publicJwk ?? null,
    policy: JSON.stringify(input.policy),
    options: JSON.stringify(input.options ?? {}),
    createdAt: new Date(),
  });
}

/**
 * Creates a provisioner of any registered type from what it is made of; its type parses (and
 * refuses) its key and options. The entry point for callers that bring their own material (admin
 * actions, the console); `addJwkProvisioner` makes a JWK's key pair first.
 */
export async function addProvisioner(store: ProvisionerStore, input: NewProvisionerInput): Promise<void> {
  await checkNewProvisioner(store, input);
  await storeProvisioner(store, input);
}

/**
 * Creates an ACME provisioner, served at `/acme/NAME/directory`: the same name and lifetime policy
 * as a JWK provisioner, plus its ACME options (EAB, terms of service, per-account rate limits).
 */
export async function addAcmeProvisioner(
  store: ProvisionerStore,
  opts: { name: string; policy: PolicyDocument; options: Partial<AcmeOptions> },
): Promise<void> {
  await addProvisioner(store, { name: opts.name, type: 'acme', policy: opts.policy, options: opts.options });
}

/**
 * Creates a JWK provisioner: a fresh key pair (ES256 by default, EdDSA with `kty: 'OKP'`), the
 * public half and policy stored in the database, the private half written to `keyOut` (0600).
 */
export async function addJwkProvisioner(
  store: ProvisionerStore,
  opts: { name: string; keyOut: string; policy: PolicyDocument; kty?: 'EC' | 'OKP' },
): Promise<{ kid: string }> {
  const alg = opts.kty === 'OKP' ? 'EdDSA' : 'ES256';
  const { privateKey, publicKey } = generateKeyPair(opts.kty === 'OKP' ? 'Ed25519' : 'EC-P256');
  const pub = publicKey.export({ format: 'jwk' }) as JWK;
  const kid = await calculateJwkThumbprint(pub);
  const input: NewProvisionerInput = {
    name: opts.name,
    type: 'jwk',
    policy: opts.policy,
    publicJwk: JSON.stringify({ ...pub, kid, alg, use: 'sig' }),
  };
  // Everything is checked before the private key is written, so a refusal leaves no key file.
  await checkNewProvisioner(store, input);
  const priv = { ...(privateKey.export({ format: 'jwk' }) as JWK), kid, alg, use: 'sig' };
  writeSecretFile(opts.keyOut, `${JSON.stringify({ provisioner: opts.name, ...priv }, null, 2)}\n`);
  await storeProvisioner(store, input);
  return { kid };
}
