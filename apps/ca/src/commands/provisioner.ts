import type { PolicyDocument } from '@shortleaf/authority';
import type { KeyTypeName } from '@shortleaf/pki';
import { readFileSync } from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import { cliAdmin, type Admin } from '../admin/index.js';
import { out, parse, UsageError, type Values } from '../cli.js';
import { cliOperator } from '../config.js';
import { LOCATION_FLAGS, openStore, storeLocation } from '../data.js';
import { PROVISIONER_TYPES } from '../provisioners.js';

/** `--mtls-renewal yes|no`: a boolean flag that can also say no (the default depends on the type). */
function yesNo(value: string): boolean {
  if (value === 'yes') return true;
  if (value === 'no') return false;
  throw new UsageError('--mtls-renewal is yes or no');
}

/** The flags of `provisioner add`, for every type. */
const ADD_FLAGS = {
  ...LOCATION_FLAGS,
  'key-out': { type: 'string' },
  'allow-dns': { type: 'string', multiple: true },
  'allow-uri': { type: 'string', multiple: true },
  'allow-ip': { type: 'string', multiple: true },
  'allow-email': { type: 'string', multiple: true },
  'default-lifetime': { type: 'string' },
  'max-lifetime': { type: 'string' },
  'min-lifetime': { type: 'string' },
  'key-types': { type: 'string' },
  'max-lineage-age': { type: 'string' },
  'mtls-renewal': { type: 'string' },
  kty: { type: 'string' },
  type: { type: 'string' },
  'require-eab': { type: 'boolean' },
  'terms-of-service': { type: 'string' },
  'orders-per-hour': { type: 'string' },
  'failed-validations-per-hour': { type: 'string' },
  issuer: { type: 'string' },
  audience: { type: 'string' },
  'jwks-file': { type: 'string' },
  'jwks-url': { type: 'string' },
  'max-token-age': { type: 'string' },
  'max-certificates-per-identity': { type: 'string' },
  scopes: { type: 'string' },
} satisfies NonNullable<ParseArgsConfig['options']>;

type AddValues = Values<typeof ADD_FLAGS>;

/** Flags that belong to one family of types, so another type refuses them rather than ignore them. */
const ACME_FLAGS = ['require-eab', 'terms-of-service', 'orders-per-hour', 'failed-validations-per-hour'] as const;
const IDP_FLAGS = [
  'issuer',
  'audience',
  'jwks-file',
  'jwks-url',
  'max-token-age',
  'max-certificates-per-identity',
  'scopes',
] as const;

function refuseFlags(values: AddValues, flags: readonly (keyof AddValues)[], belongsTo: string): void {
  const found = flags.find((k) => values[k] !== undefined);
  if (found !== undefined) throw new UsageError(`--${String(found)} applies to ${belongsTo}`);
}

/**
 * The options of a provisioner that trusts someone else's tokens, from its flags: the key set a
 * `--jwks-file` holds is stored with it (the file is not read again), a `--jwks-url` is fetched.
 */
function idpOptions(values: AddValues, type: 'kubernetes' | 'oidc'): Record<string, unknown> {
  if (values.issuer === undefined || values.audience === undefined)
    throw new UsageError(
      type === 'kubernetes'
        ? "a Kubernetes provisioner needs --issuer ISS (the cluster's service-account issuer) and --audience AUD (the audience pods request)"
        : 'an OIDC provisioner needs --issuer URL and --audience CLIENT_ID',
    );
  if (values['jwks-file'] !== undefined && values['jwks-url'] !== undefined)
    throw new UsageError('give --jwks-file or --jwks-url, not both');
  if (type === 'kubernetes' && values['jwks-file'] === undefined && values['jwks-url'] === undefined)
    throw new UsageError(
      "a Kubernetes provisioner needs the cluster's keys: --jwks-file FILE (kubectl get --raw /openid/v1/jwks > FILE) or --jwks-url URL",
    );
  if (type === 'kubernetes' && values.scopes !== undefined)
    throw new UsageError('--scopes applies to OIDC provisioners (--type oidc)');
  let jwks: unknown;
  if (values['jwks-file'] !== undefined) {
    try {
      jwks = JSON.parse(readFileSync(values['jwks-file'], 'utf8'));
    } catch (cause) {
      throw new UsageError(`--jwks-file ${values['jwks-file']}: ${(cause as Error).message}`);
    }
  }
  return {
    issuer: values.issuer,
    audience: values.audience,
    ...(jwks === undefined ? {} : { jwks }),
    ...(values['jwks-url'] === undefined ? {} : { jwksUrl: values['jwks-url'] }),
    ...(values['max-token-age'] === undefined ? {} : { maxTokenAge: values['max-token-age'] }),
    // N/PERIOD or none; the type's default (100/1h) when not given.
    ...(values['max-certificates-per-identity'] === undefined
      ? {}
      : { maxCertificatesPerIdentity: values['max-certificates-per-identity'] }),
    ...(values.scopes === undefined ? {} : { scopes: values.scopes.split(',').map((x) => x.trim()) }),
  };
}

/** How `provisioner add` makes a Kubernetes or OIDC provisioner, and what it prints. */
function idpMaker(type: 'kubernetes' | 'oidc') {
  return {
    check(values: AddValues) {
      refuseFlags(values, ACME_FLAGS, 'ACME provisioners (--type acme)');
      refuseFlags(values, ['key-out', 'kty'], 'JWK provisioners (--type jwk)');
      idpOptions(values, type);
    },
    async add(admin: Admin, name: string, policy: PolicyDocument, values: AddValues) {
      const options = idpOptions(values, type);
      await admin.addProvisioner(cliOperator(), { name, type, policy, options });
      out(
        `${type === 'kubernetes' ? 'Kubernetes' : 'OIDC'} provisioner ${name} added: tokens from ${values.issuer} for audience ${values.audience}; its certificates carry only the names its template (templates.${name}) makes`,
      );
    },
  };
}

/**
 * How `provisioner add` makes each type from its flags: usage checks before the store opens, then
 * the type's own entry point (which has the registry parse its key and options). A type the
 * registry knows and this table does not cannot be added from the command line yet.
 */
const ADD_BY_TYPE: Readonly<
  Record<
    string,
    {
      check(values: AddValues): void;
      add(admin: Admin, name: string, policy: PolicyDocument, values: AddValues): Promise<void>;
    }
  >
> = {
  jwk: {
    check(values) {
      if (values['key-out'] === undefined)
        throw new UsageError('a JWK provisioner needs --key-out FILE for its private key');
      refuseFlags(values, ACME_FLAGS, 'ACME provisioners (--type acme)');
      refuseFlags(values, IDP_FLAGS, 'Kubernetes and OIDC provisioners (--type kubernetes, --type oidc)');
    },
    async add(admin, name, policy, values) {
      const { kid } = await admin.addJwkProvisioner(cliOperator(), {
        name,
        keyOut: values['key-out']!,
        policy,
        ...(values.kty ? { kty: values.kty as 'EC' | 'OKP' } : {}),
      });
      out(`provisioner ${name} added (kid ${kid}); its private key is in ${values['key-out']} (mode 0600)`);
    },
  },
  acme: {
    check(values) {
      refuseFlags(values, IDP_FLAGS, 'Kubernetes and OIDC provisioners (--type kubernetes, --type oidc)');
    },
    async add(admin, name, policy, values) {
      const count = (flag: 'orders-per-hour' | 'failed-validations-per-hour') => {
        const v = values[flag];
        if (v === undefined) return undefined;
        if (!/^[1-9]\d{0,8}$/.test(v)) throw new UsageError(`--${flag} must be a positive integer`);
        return Number(v);
      };
      const options = {
        ...(values['require-eab'] ? { requireEab: true } : {}),
        ...(values['terms-of-service'] ? { termsOfService: values['terms-of-service'] } : {}),
        ...(count('orders-per-hour') === undefined ? {} : { ordersPerHour: count('orders-per-hour') }),
        ...(count('failed-validations-per-hour') === undefined
          ? {}
          : { failedValidationsPerHour: count('failed-validations-per-hour') }),
      };
      await admin.addAcmeProvisioner(cliOperator(), { name, policy, options });
      out(
        `ACME provisioner ${name} added: directory at /acme/${name}/directory${options.requireEab ? ' (external account binding required: shortleaf acme eab add)' : ''}`,
      );
    },
  },
  kubernetes: idpMaker('kubernetes'),
  oidc: idpMaker('oidc'),
};

/**
 * A provisioner's options as `list` shows them: as stored, except a stored key set, which is
 * summarised by its key ids (public keys, but pages of base64 say nothing to a reader).
 */
function listedOptions(type: string, options: string | undefined): string {
  if (type !== 'kubernetes' && type !== 'oidc') return options ?? '{}';
  try {
    const doc = JSON.parse(options ?? '{}') as { jwks?: { keys?: { kid?: unknown }[] } };
    if (doc.jwks === undefined) return options ?? '{}';
    const kids = (doc.jwks.keys ?? []).map((k) => (typeof k.kid === 'string' ? k.kid : '(no kid)'));
    return JSON.stringify({ ...doc, jwks: `${kids.length} key(s): ${kids.join(', ')}` });
  } catch {
    return options ?? '{}';
  }
}

/** `shortleaf provisioner add|list`: who may ask for certificates, and for which names. */
export async function provisionerCommand(args: string[]): Promise<void> {
  const [verb, ...rest] = args;
  if (verb === 'add') {
    const { values, positionals } = parse(rest, ADD_FLAGS);
    const name = positionals[0];
    const type = values.type ?? 'jwk';
    if (name === undefined)
      throw new UsageError(
        'usage: shortleaf provisioner add NAME (--data DIR | --database URL) (--key-out FILE | --type acme | --type kubernetes --issuer ISS --audience AUD (--jwks-file FILE | --jwks-url URL) | --type oidc --issuer URL --audience CLIENT_ID [--jwks-url URL]) [--allow-dns PATTERN]... [--allow-email PATTERN]... [--max-token-age D] [--max-certificates-per-identity N/PERIOD]',
      );
    // The registry says which types exist; ADD_BY_TYPE how to make each from flags.
    if (PROVISIONER_TYPES.find(type) === undefined)
      throw new UsageError(`--type is ${PROVISIONER_TYPES.types.map((t) => t.summary).join(' or ')}`);
    const maker = ADD_BY_TYPE[type];
    if (maker === undefined) throw new UsageError(`${type} provisioners cannot be added from the command line yet`);
    maker.check(values);
    const policy: PolicyDocument = {
      names: {
        dns: values['allow-dns'] ?? [],
        ip: values['allow-ip'] ?? [],
        uri: values['allow-uri'] ?? [],
        // `*@DOMAIN` or an exact address; kept out of the stored policy when not given.
        ...(values['allow-email'] === undefined ? {} : { email: values['allow-email'] }),
      },
      ...(values['default-lifetime'] ? { defaultLifetime: values['default-lifetime'] } : {}),
      ...(values['max-lifetime'] ? { maxLifetime: values['max-lifetime'] } : {}),
      ...(values['min-lifetime'] ? { minLifetime: values['min-lifetime'] } : {}),
      ...(values['key-types'] ? { keyTypes: values['key-types'].split(',') as KeyTypeName[] } : {}),
      ...(values['max-lineage-age'] ? { maxLineageAge: values['max-lineage-age'] } : {}),
      ...(values['mtls-renewal'] === undefined ? {} : { mtlsRenewal: yesNo(values['mtls-renewal']) }),
    };
    if (values.kty !== undefined && values.kty !== 'EC' && values.kty !== 'OKP')
      throw new UsageError('--kty is EC (ES256) or OKP (EdDSA)');
    const store = await openStore(storeLocation(values));
    try {
      await maker.add(cliAdmin(store), name, policy, values);
    } finally {
      await store.close();
    }
    return;
  }
  if (verb === 'list') {
    const { values } = parse(rest, LOCATION_FLAGS);
    const store = await openStore(storeLocation(values));
    try {
      const provisioners = await store.listProvisioners();
      // An empty list says so, and what to do, rather than printing nothing at all.
      if (provisioners.length === 0) {
        out(
          'no provisioners yet: add one with `shortleaf provisioner add NAME --data DIR --key-out FILE` (tokens) or `--type acme`',
        );
        return;
      }
      out('NAME\tTYPE\tPOLICY\tOPTIONS');
      for (const p of provisioners)
        out(`${p.name}\t${p.type}\t${p.policy}${p.type === 'jwk' ? '' : `\t${listedOptions(p.type, p.options)}`}`);
    } finally {
      await store.close();
    }
    return;
  }
  throw new UsageError(
    'usage: shortleaf provisioner add NAME (--data DIR | --database URL) (--key-out FILE | --type acme) | shortleaf provisioner list (--data DIR | --database URL)',
  );
}
