import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { shortleafOk } from './cli.js';
import { curl } from './http.js';
import { openssl } from './openssl.js';
import { serialOf } from './revocation.js';
import { startServer, type RunningServer, type ServeOptions } from './server.js';

/** A leaf issued through the CLI: the cert file (leaf + chain), its key, the bare leaf, its serial. */
export interface IssuedLeaf {
  cert: string;
  key: string;
  /** The leaf alone (`openssl x509 -in cert -out leaf`), for `openssl ocsp -cert` and `verify`. */
  leaf: string;
  serial: string;
}

export interface DevCa {
  data: string;
  /** The running server; a test that restarts it assigns the new one here (`issue` uses it). */
  server: RunningServer;
  /** roots.pem and intermediates.pem as the server publishes them, and the two concatenated. */
  roots: string;
  intermediates: string;
  chain: string;
  adminKey: string;
  /** `shortleaf token` + `shortleaf certificate` for SUBJECT, files named after `name` in `dir`. */
  issue(
    subject: string,
    name: string,
    opts?: { sans?: string[]; extra?: string[]; provisioner?: string; key?: string },
  ): Promise<IssuedLeaf>;
}

/**
 * `shortleaf init` into DIR/data (once), then `shortleaf serve` on free ports; fetches the
 * published trust bundles into DIR. `beforeServe` runs between the two (to add provisioners).
 */
export async function startDevCa(
  dir: string,
  opts: { beforeServe?: (data: string) => Promise<void>; serve?: Omit<ServeOptions, 'data'>; init?: boolean } = {},
): Promise<DevCa> {
  const data = join(dir, 'data');
  const f = (name: string) => join(dir, name);
  if (opts.init !== false) await shortleafOk(['init', '--data', data]);
  await opts.beforeServe?.(data);
  const server = await startServer({ data, ...(opts.serve ?? {}) });
  const rootCrt = join(data, 'offline-root', 'root.crt');
  const roots = await curl(['--cacert', rootCrt, `${server.publicUrl}/roots.pem`]);
  const ints = await curl(['--cacert', rootCrt, `${server.publicUrl}/intermediates.pem`]);
  if (roots.status !== 200 || ints.status !== 200)
    throw new Error(`trust bundles: HTTP ${roots.status} / ${ints.status}`);
  writeFileSync(f('roots.pem'), roots.text);
  writeFileSync(f('intermediates.pem'), ints.text);
  writeFileSync(f('chain.pem'), roots.text + ints.text);
  const adminKey = join(data, 'provisioners', 'admin.jwk');
  const ca: DevCa = {
    data,
    server,
    roots: f('roots.pem'),
    intermediates: f('intermediates.pem'),
    chain: f('chain.pem'),
    adminKey,
    async issue(subject, name, o = {}) {
      const tok = await shortleafOk([
        'token',
        subject,
        '--provisioner',
        o.provisioner ?? 'admin',
        '--key',
        o.key ?? adminKey,
        '--ca',
        ca.server.publicUrl,
        ...(o.sans ?? []).flatMap((s) => ['--san', s]),
      ]);
      const leaf: IssuedLeaf = {
        cert: f(`${name}.pem`),
        key: f(`${name}.key`),
        leaf: f(`${name}-leaf.pem`),
        serial: '',
      };
      await shortleafOk([
        'certificate',
        subject,
        '--ca',
        ca.server.publicUrl,
        '--root',
        f('roots.pem'),
        '--token',
        tok.stdout.trim(),
        '--cert',
        leaf.cert,
        '--key',
        leaf.key,
        ...(o.sans ?? []).flatMap((s) => ['--san', s]),
        ...(o.extra ?? []),
      ]);
      await openssl(['x509', '-in', leaf.cert, '-out', leaf.leaf]);
      leaf.serial = serialOf(leaf.leaf);
      return leaf;
    },
  };
  return ca;
}
