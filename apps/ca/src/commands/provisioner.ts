import type { PolicyDocument } from '@shortleaf/authority';
import type { KeyTypeName } from '@shortleaf/pki';
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
} satisfies NonNullable<ParseArgsConfig['options']>;

type AddValues = Values<typeof ADD_FLAGS>;

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
      const acmeOnly = (
        ['require-eab', 'terms-of-service', 'orders-per-hour', 'failed-validations-per-hour'] as const
      ).find((k) => values[k] !== undefined);
      if (acmeOnly !== undefined) throw new UsageError(`--${acmeOnly} applies to ACME provisioners (--type acme)`);
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
    check() {},
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
};

/** `shortleaf provisioner add|list`: who may ask for certificates, and for which names. */
export async function provisionerCommand(args: string[]): Promise<void> {
  const [verb, ...rest] = args;
  if (verb === 'add') {
    const { values, positionals } = parse(rest, ADD_FLAGS);
    const name = positionals[0];
    const type = values.type ?? 'jwk';
    if (name === undefined)
      throw new UsageError(
        'usage: shortleaf provisioner add NAME (--data DIR | --database URL) (--key-out FILE | --type acme) [--allow-dns PATTERN]...',
      );
    // The registry says which types exist; ADD_BY_TYPE how to make each from flags.
    if (PROVISIONER_TYPES.find(type) === undefined)
      throw new UsageError(`--type is ${PROVISIONER_TYPES.types.map((t) => t.summary).join(' or ')}`);
    const maker = ADD_BY_TYPE[type];
    if (maker === undefined) throw new UsageError(`${type} provisioners cannot be added from the command line yet`);
    maker.check(values);
    const policy: PolicyDocument = {
      names: { dns: values['allow-dns'] ?? [], ip: values['allow-ip'] ?? [], uri: values['allow-uri'] ?? [] },
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
        out(`${p.name}\t${p.type}\t${p.policy}${p.type === 'acme' ? `\t${p.options}` : ''}`);
    } finally {
      await store.close();
    }
    return;
  }
  throw new UsageError(
    'usage: shortleaf provisioner add NAME (--data DIR | --database URL) (--key-out FILE | --type acme) | shortleaf provisioner list (--data DIR | --database URL)',
  );
}
