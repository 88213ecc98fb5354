// A retired intermediate leaves service when the last certificate it issued expires: until then
// its CRL and OCSP answers stay; then `serve` stops them by itself, without a restart. Its only
// certificate here is a one-minute leaf, so the test waits about two minutes (bounded).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { addShortLivedProvisioner } from './helpers/agent.js';
import { shortleafOk, tempDir } from './helpers/cli.js';
import { startDevCa, type DevCa } from './helpers/dev-ca.js';
import { curl } from './helpers/http.js';
import { ocsp } from './helpers/revocation.js';
import { pollUntil } from './helpers/server.js';

describe('a retired intermediate leaves service when its last certificate expires', () => {
  const dir = tempDir();
  const f = dir.file;
  let devCa: DevCa | undefined;
  const ca = () => {
    assert.ok(devCa, 'the CA did not start');
    return devCa;
  };
  const stateOf = async (name: string) => {
    const out = (await shortleafOk(['intermediate', 'list', '--data', ca().data])).stdout;
    return new RegExp(`^${name}\\s+(\\S+)`, 'm').exec(out)?.[1];
  };

  before(async () => {
    devCa = await startDevCa(dir.path, {
      beforeServe: (data) => addShortLivedProvisioner(data, 'short', f('short.jwk')),
    });
  });
  after(async () => {
    await devCa?.server.stop();
    dir.remove();
  });

  it('answers for its one-minute leaf while it is valid, then stops publishing', async () => {
    const primaryPem = f('intermediates.pem'); // fetched before the rotation: primary only
    await shortleafOk(['intermediate', 'csr', '--data', ca().data, '--name', 'next', '--out', f('next.csr')]);
    await shortleafOk([
      'root',
      'sign-intermediate',
      '--root',
      join(ca().data, 'offline-root'),
      '--csr',
      f('next.csr'),
      '--out',
      f('next.crt'),
    ]);
    await shortleafOk([
      'intermediate',
      'import',
      '--data',
      ca().data,
      '--name',
      'next',
      '--cert',
      f('next.crt'),
      '--root',
      join(ca().data, 'offline-root', 'root.crt'),
    ]);
    // The one-minute leaf comes last before the switch, so slow CLI calls on a busy machine cannot
    // use up its minute before the test looks at the retired intermediate.
    const leaf = await ca().issue('old.test', 'old', { provisioner: 'short', key: f('short.jwk') });
    await shortleafOk(['intermediate', 'activate', '--data', ca().data, 'next']);
    await pollUntil(
      'the switch',
      async () =>
        ca()
          .server.logs()
          .some((l) => l.event === 'issuer_activated')
          ? true
          : undefined,
      { timeoutMs: 15_000 },
    );

    // Retired, still in service: its CRL and OCSP answers for the leaf it issued.
    assert.equal(await stateOf('primary'), 'retired');
    assert.equal((await curl([`${ca().server.status}/crl/primary`])).status, 200);
    const before = await ocsp([
      '-issuer',
      primaryPem,
      '-cert',
      leaf.leaf,
      '-url',
      `${ca().server.statusUrl}/ocsp`,
      '-CAfile',
      ca().roots,
    ]);
    assert.equal(before.single(leaf.leaf)?.status, 'good', before.output);
    assert.ok(before.verified, before.output);

    // Once the leaf has expired, `serve` takes primary out of service on its own.
    await pollUntil(
      'primary out of service',
      async () =>
        ca()
          .server.logs()
          .some((l) => l.event === 'issuer_out_of_service' && l.issuer === 'primary')
          ? true
          : undefined,
      { timeoutMs: 150_000, intervalMs: 1_000 },
    );
    assert.equal(await stateOf('primary'), 'ended');
    assert.equal((await curl([`${ca().server.status}/crl/primary`])).status, 404);
    const listed = (await curl([`${ca().server.status}/intermediates.pem`])).text;
    assert.equal(listed.match(/BEGIN CERTIFICATE/g)?.length, 1, 'only next is listed now');
    const afterwards = await ocsp([
      '-issuer',
      primaryPem,
      '-cert',
      leaf.leaf,
      '-url',
      `${ca().server.statusUrl}/ocsp`,
      '-CAfile',
      ca().roots,
    ]);
    assert.equal(afterwards.responderError, 'unauthorized (6)', afterwards.output);
    assert.equal(ca().server.exited(), false);
  });
});
