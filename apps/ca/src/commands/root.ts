import { readFileSync } from 'node:fs';
import { encodePem, type KeyTypeName } from '@shortleaf/pki';
import { createRoot, openRoot, signIntermediate } from '../ceremony.js';
import { out, parse, UsageError } from '../cli.js';
import { writeFileAtomic } from '../files.js';
import { rootLayout } from '../layout.js';
import { rootPassphrase } from '../passphrase.js';

/** `shortleaf root init|sign-intermediate`: the offline ceremony, run on the machine that keeps the root. */
export async function rootCommand(args: string[]): Promise<void> {
  const [verb, ...rest] = args;
  if (verb === 'init') {
    const { values } = parse(rest, { out: { type: 'string' }, cn: { type: 'string' }, kty: { type: 'string' }, validity: { type: 'string' } }, ['out']);
    const passphrase = await rootPassphrase({ confirm: true });
    const root = createRoot({ dir: values.out!, passphrase, commonName: values.cn ?? 'Shortleaf Root CA', keyType: (values.kty ?? 'EC-P384') as KeyTypeName, ...(values.validity ? { validity: values.validity } : {}) });
    const files = rootLayout(values.out!);
    out(`root certificate: ${files.certificate}\nroot key (encrypted PKCS#8, mode 0600): ${files.key}\nvalid until ${root.notAfter.toISOString()}`);
    out('Keep this directory offline. Copy only root.crt to the CA server.');
    return;
  }
  if (verb === 'sign-intermediate') {
    const { values } = parse(
      rest,
      { root: { type: 'string' }, csr: { type: 'string' }, out: { type: 'string' }, 'permit-dns': { type: 'string', multiple: true }, 'permit-uri': { type: 'string', multiple: true }, validity: { type: 'string' } },
      ['root', 'csr', 'out'],
    );
    const root = openRoot(values.root!, await rootPassphrase({ passwordFile: rootLayout(values.root!).password }));
    const der = signIntermediate({ root, csrPem: readFileSync(values.csr!, 'utf8'), permitDns: values['permit-dns'] ?? [], permitUri: values['permit-uri'] ?? [], ...(values.validity ? { validity: values.validity } : {}) });
    writeFileAtomic(values.out!, encodePem('CERTIFICATE', der));
    out(`intermediate certificate written to ${values.out}`);
    return;
  }
  throw new UsageError('usage: shortleaf root init --out DIR | shortleaf root sign-intermediate --root DIR --csr FILE --out FILE');
}
