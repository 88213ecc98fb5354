import type { PolicyDocument } from '@shortleaf/authority';
import type { KeyTypeName } from '@shortleaf/pki';
import { out, parse, UsageError } from '../cli.js';
import { openStore } from '../data.js';
import { addJwkProvisioner } from '../provisioners.js';

/** `shortleaf provisioner add|list`: who may ask for certificates, and for which names. */
export async function provisionerCommand(args: string[]): Promise<void> {
  const [verb, ...rest] = args;
  if (verb === 'add') {
    const { values, positionals } = parse(
      rest,
      {
        data: { type: 'string' },
        'key-out': { type: 'string' },
        'allow-dns': { type: 'string', multiple: true },
        'allow-uri': { type: 'string', multiple: true },
        'allow-ip': { type: 'string', multiple: true },
        'default-lifetime': { type: 'string' },
        'max-lifetime': { type: 'string' },
        'min-lifetime': { type: 'string' },
        'key-types': { type: 'string' },
        kty: { type: 'string' },
      },
      ['data', 'key-out'],
    );
    const name = positionals[0];
    if (name === undefined) throw new UsageError('usage: shortleaf provisioner add NAME --data DIR --key-out FILE [--allow-dns PATTERN]...');
    const policy: PolicyDocument = {
      names: { dns: values['allow-dns'] ?? [], ip: values['allow-ip'] ?? [], uri: values['allow-uri'] ?? [] },
      ...(values['default-lifetime'] ? { defaultLifetime: values['default-lifetime'] } : {}),
      ...(values['max-lifetime'] ? { maxLifetime: values['max-lifetime'] } : {}),
      ...(values['min-lifetime'] ? { minLifetime: values['min-lifetime'] } : {}),
      ...(values['key-types'] ? { keyTypes: values['key-types'].split(',') as KeyTypeName[] } : {}),
    };
    if (values.kty !== undefined && values.kty !== 'EC' && values.kty !== 'OKP') throw new UsageError('--kty is EC (ES256) or OKP (EdDSA)');
    const { store } = await openStore(values.data!);
    try {
      const { kid } = await addJwkProvisioner(store, { name, keyOut: values['key-out']!, policy, ...(values.kty ? { kty: values.kty as 'EC' | 'OKP' } : {}) });
      out(`provisioner ${name} added (kid ${kid}); its private key is in ${values['key-out']} (mode 0600)`);
    } finally {
      await store.close();
    }
    return;
  }
  if (verb === 'list') {
    const { values } = parse(rest, { data: { type: 'string' } }, ['data']);
    const { store } = await openStore(values.data!);
    try {
      for (const p of await store.listProvisioners()) out(`${p.name}\t${p.type}\t${p.policy}`);
    } finally {
      await store.close();
    }
    return;
  }
  throw new UsageError('usage: shortleaf provisioner add NAME --data DIR --key-out FILE | shortleaf provisioner list --data DIR');
}
