import { cliAdmin } from '../admin/index.js';
import { out, parse, UsageError } from '../cli.js';
import { cliOperator } from '../config.js';
import { LOCATION_FLAGS, openStore, storeLocation, storeSealer } from '../data.js';

/** `shortleaf acme eab add|list`: External Account Binding keys for ACME provisioners. */
export async function acmeCommand(args: string[]): Promise<void> {
  const [noun, verb, ...rest] = args;
  if (noun !== 'eab' || (verb !== 'add' && verb !== 'list'))
    throw new UsageError(
      'usage: shortleaf acme eab add --provisioner NAME (--data DIR | --database URL) | shortleaf acme eab list --provisioner NAME (--data DIR | --database URL)',
    );
  const { values } = parse(
    rest,
    { ...LOCATION_FLAGS, provisioner: { type: 'string' }, 'password-file': { type: 'string' } },
    ['provisioner'],
  );
  const location = storeLocation(values);
  const store = await openStore(location);
  try {
    if (verb === 'list') {
      for (const k of await cliAdmin(store).listEabKeys(cliOperator(), values.provisioner!))
        out(
          `${k.kid}\t${k.createdAt.toISOString()}\t${k.accountId === null ? 'unused' : `bound to account ${k.accountId}`}`,
        );
      return;
    }
    const { sealer } = await storeSealer(location, store, values['password-file']);
    const { kid, hmacKey } = await cliAdmin(store, { sealer }).addEabKey(cliOperator(), values.provisioner!);
    // Two lines a script can read; the HMAC key is shown only this once.
    out(`kid: ${kid}\nhmac: ${hmacKey}`);
  } finally {
    await store.close();
  }
}
