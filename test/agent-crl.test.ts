// `shortleaf agent crl` end to end: the agent keeps nginx's ssl_crl file (the intermediate's CRL
// and the root's) fresh from a running CA and reloads nginx; a client revoked with the CLI is
// refused soon after, a good one still gets in. CRLs with one byte changed are refused and the
// file stays as it was. OpenSSL reads every CRL file the agent writes.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  changedSince,
  nginxReloadCommand,
  runAgent,
  serveBytes,
  snapshot,
  startAgent,
  type AgentLog,
  type RunningAgent,
  type StaticServer,
} from './helpers/agent.js';
import { shortleafOk, tempDir } from './helpers/cli.js';
import { startDevCa, type DevCa, type IssuedLeaf } from './helpers/dev-ca.js';
import { curl, request } from './helpers/http.js';
import { startEchoUpstream, startNginx, type EchoUpstream, type RunningNginx } from './helpers/nginx.js';
import { openssl, opensslResult } from './helpers/openssl.js';
import { crlInfo, crlVerifies } from './helpers/revocation.js';
import { freePort, pollUntil } from './helpers/server.js';

const is = (event: string) => (l: AgentLog) => l.event === event;
const CRL_BLOCK = /-----BEGIN X509 CRL-----[\s\S]*?-----END X509 CRL-----\n?/g;
const crlBlocks = (pem: string): string[] => [...pem.matchAll(CRL_BLOCK)].map((m) => m[0]);

/** Tag and length of the DER element at `at`: where its content starts and ends. */
function derElement(der: Buffer, at: number): { tag: number; start: number; end: number } {
  const tag = der[at]!;
  const first = der[at + 1]!;
  if (first < 0x80) return { tag, start: at + 2, end: at + 2 + first };
  const n = first & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + der[at + 2 + i]!;
  return { tag, start: at + 2 + n, end: at + 2 + n + len };
}

/**
 * The genuine CRL with one byte changed: in the signature (its last byte), in the signed part
 * (the units digit of thisUpdate's seconds, so it still parses), and in the structure (the outer
 * SEQUENCE tag becomes a SET, so it no longer parses).
 */
function tamperings(der: Buffer): Record<'signature' | 'signedPart' | 'structure', Buffer> {
  const outer = derElement(der, 0);
  const tbs = derElement(der, outer.start);
  assert.equal(outer.tag, 0x30);
  assert.equal(tbs.tag, 0x30);
  const flip = (at: number, mask: number) => {
    const copy = Buffer.from(der);
    copy[at] = copy[at]! ^ mask;
    return copy;
  };
  // UTCTime YYMMDDHHMMSSZ: tag 0x17, length 13; the first one in the signed part is thisUpdate.
  const time = der.subarray(0, tbs.end).indexOf(Buffer.from([0x17, 0x0d]), tbs.start);
  assert.ok(time > tbs.start, 'thisUpdate is a UTCTime in the signed part');
  return { signature: flip(der.length - 1, 0x01), signedPart: flip(time + 2 + 11, 0x01), structure: flip(0, 0x01) };
}

describe('shortleaf agent crl: nginx checks clients against CRL files the agent keeps fresh', () => {
  const dir = tempDir();
  const f = (name: string) => dir.file(name);
  let devCa: DevCa | undefined;
  let upstream: EchoUpstream | undefined;
  let nginx: RunningNginx | undefined;
  const agents: RunningAgent[] = [];
  const servers: StaticServer[] = [];
  const L: Record<'server' | 'good' | 'victim', IssuedLeaf> = {} as never;
  const ca = () => {
    assert.ok(devCa, 'the CA did not start');
    return devCa;
  };
  const crlFile = () => f('crl.pem');
  const crlArgs = () => [
    'crl',
    '--url',
    `${ca().server.statusUrl}/crl`,
    '--root-url',
    `${ca().server.statusUrl}/root.crl`,
    '--root',
    ca().chain,
    '--out',
    crlFile(),
  ];
  const launch = (args: string[]) => {
    const agent = startAgent(args);
    agents.push(agent);
    return agent;
  };

  before(async () => {
    devCa = await startDevCa(dir.path);
    L.server = await devCa.issue('localhost', 'nginx-server', { sans: ['127.0.0.1'] });
    L.good = await devCa.issue('svc-good.internal', 'good');
    L.victim = await devCa.issue('svc-victim.internal', 'victim');
    upstream = await startEchoUpstream();
  });

  after(async () => {
    try {
      for (const a of agents) await a.stop();
      for (const s of servers) await s.close();
      await nginx?.stop();
      await upstream?.close();
      if (devCa)
        assert.deepEqual(
          devCa.server.logs().filter((l) => l.level === 'error'),
          [],
          'no internal error logged',
        );
      await devCa?.server.stop();
    } finally {
      dir.remove();
    }
  });

  /** GET through nginx on a brand-new TLS connection, with `leaf` as the client certificate. */
  const viaNginx = (leaf: IssuedLeaf) =>
    request(`https://127.0.0.1:${nginx!.site.port}/whoami`, {
      ca: readFileSync(ca().roots, 'utf8'),
      cert: readFileSync(leaf.cert, 'utf8'),
      key: readFileSync(leaf.key, 'utf8'),
      servername: 'localhost',
      freshConnection: true,
      timeoutMs: 5_000,
    });

  /** OpenSSL's view of the file: two CRLs (the intermediate's, then the root's), each verifying against the chain. */
  async function readCrlFile(): Promise<{ serials: Set<string>; numbers: bigint[] }> {
    const text = readFileSync(crlFile(), 'utf8');
    const blocks = crlBlocks(text);
    assert.equal(blocks.length, 2, `the intermediate's and the root's CRL:\n${text}`);
    for (const block of blocks) {
      const v = await crlVerifies(block, ca().chain);
      assert.ok(v.ok, v.output);
    }
    // `openssl crl -in FILE` reads the first CRL of the file: the intermediate's, as --url came first.
    const first = await crlInfo(await openssl(['crl', '-in', crlFile()]));
    const root = await crlInfo(blocks[1]!);
    return { serials: new Set(first.entries.keys()), numbers: [first.number, root.number] };
  }

  it('--once writes the two CRLs, verified, atomically, world-readable; run again with nothing new, it leaves the file alone', async () => {
    const r = await runAgent([...crlArgs(), '--once']);
    assert.equal(r.code, 0, r.stderr);
    const written = r.logs.filter(is('crl_written'));
    assert.equal(written.length, 1, r.stderr);
    assert.equal(statSync(crlFile()).mode & 0o777, 0o644);
    const { serials } = await readCrlFile();
    assert.ok(!serials.has(L.victim.serial));
    const files = snapshot([crlFile()]);
    const again = await runAgent([...crlArgs(), '--once']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.logs.filter(is('crl_written')).length, 0, 'the same CRLs are not written again');
    assert.deepEqual(changedSince(files), []);
  });

  it(
    'a client revoked with the CLI: the agent writes the new CRL and reloads nginx, which refuses the client; a good client still gets in',
    { timeout: 120_000 },
    async (t) => {
      nginx = await startNginx({
        dir: f('nginx'),
        port: await freePort(),
        serverCert: L.server.cert,
        serverKey: L.server.key,
        clientCa: ca().chain,
        upstreamPort: upstream!.port,
        revocation: { crlFile: crlFile() },
      });
      assert.equal((await viaNginx(L.good)).status, 200, nginx.errorLog());
      assert.equal((await viaNginx(L.victim)).status, 200, 'accepted before it is revoked');
      const before = await readCrlFile();

      const agent = launch([...crlArgs(), '--interval', '1s', '--exec', nginxReloadCommand(nginx.site.dir)]);
      await shortleafOk(['revoke', L.victim.serial, '--reason', 'keyCompromise', '--data', ca().data]);
      const t0 = Date.now();

      // The first poll finds what is already in the file and writes nothing; a later one, the CRL
      // that lists the serial.
      await pollUntil(
        `the CRL file to list ${L.victim.serial}`,
        async () => ((await readCrlFile()).serials.has(L.victim.serial) ? true : undefined),
        { timeoutMs: 30_000, intervalMs: 200 },
      );
      t.diagnostic(`the CRL file listed it ${Date.now() - t0} ms after shortleaf revoke returned`);
      const listsOne = (l: AgentLog) =>
        l.event === 'crl_written' && ((l.crls as Array<{ entries: number }> | undefined)?.[0]?.entries ?? 0) > 0;
      const written = await agent.waitFor('the agent to log the write', listsOne, { timeoutMs: 10_000 });
      const hook = await agent.waitFor(
        'the reload after it',
        (l) => l.event === 'hook_succeeded' || l.event === 'hook_failed',
        { from: written.index, timeoutMs: 30_000 },
      );
      assert.equal(hook.log.event, 'hook_succeeded', `nginx -s reload: ${String(hook.log.detail)}`);
      const now = await readCrlFile();
      assert.ok(now.serials.has(L.victim.serial), `openssl crl lists ${L.victim.serial}`);
      assert.ok(now.numbers[0]! > before.numbers[0]!, 'a newer intermediate CRL');
      assert.ok(!now.serials.has(L.good.serial));

      await pollUntil(
        `nginx to refuse ${L.victim.serial}`,
        async () => ((await viaNginx(L.victim)).status === 400 ? true : undefined),
        { timeoutMs: 20_000, intervalMs: 100 },
      );
      t.diagnostic(`nginx refused the revoked client ${Date.now() - t0} ms after shortleaf revoke returned`);
      assert.match(nginx.errorLog(), /client SSL certificate verify error: (\(23:)?certificate revoked/);
      const good = await viaNginx(L.good);
      assert.equal(good.status, 200, 'the good client still gets in');
      assert.equal(good.json<Record<string, string>>()['x-client-verify'], 'SUCCESS');
      assert.deepEqual(agent.events('crl_refused'), [], agent.stderr());
      assert.equal(nginx.exited(), false, nginx.errorLog());
    },
  );

  it(
    'a CRL with one byte changed (signature, signed part, structure) is refused: --once exits non-zero, the running agent logs crl_refused, the file stays byte for byte',
    { timeout: 120_000 },
    async () => {
      const genuine = (await curl([`${ca().server.statusUrl}/crl`])).body;
      const bad = tamperings(genuine);
      // OpenSSL agrees: the first two still parse but no longer verify; the third does not parse.
      for (const name of ['signature', 'signedPart'] as const) {
        await openssl(['crl', '-inform', 'DER', '-noout'], bad[name]);
        assert.equal((await crlVerifies(bad[name], ca().chain)).ok, false, `OpenSSL must refuse the ${name} tampering`);
      }
      assert.notEqual((await opensslResult(['crl', '-inform', 'DER', '-noout'], bad.structure)).code, 0);
      assert.ok((await crlVerifies(genuine, ca().chain)).ok, 'the genuine CRL verifies');

      mkdirSync(f('tampered'));
      const out = join(f('tampered'), 'crl.pem');
      copyFileSync(crlFile(), out);
      const files = snapshot([out]);
      let serving = genuine;
      const server = await serveBytes(() => serving);
      servers.push(server);
      const args = ['crl', '--url', server.url, '--root', ca().chain, '--out', out];
      const cases = [
        {
          name: 'signature',
          bytes: bad.signature,
          code: 'badSignature',
          message: /not signed by any of the configured CA certificates/,
        },
        {
          name: 'signedPart',
          bytes: bad.signedPart,
          code: 'badSignature',
          message: /not signed by any of the configured CA certificates/,
        },
        { name: 'structure', bytes: bad.structure, code: 'badCrl', message: /is not a CRL/ },
      ] as const;

      for (const c of cases) {
        serving = c.bytes;
        const r = await runAgent([...args, '--once']);
        assert.notEqual(r.code, 0, `--once with the ${c.name} tampering must fail:\n${r.stderr}`);
        const refusal = r.logs.find((l) => l.event === 'crl_refused' || l.event === 'agent_failed');
        assert.ok(refusal, r.stderr);
        assert.match(String(refusal.error), c.message, r.stderr);
        if ('code' in refusal) assert.equal(refusal.code, c.code);
        assert.equal(r.logs.filter(is('crl_written')).length, 0);
        assert.deepEqual(changedSince(files), [], `the ${c.name} tampering left the file byte for byte`);
      }

      serving = cases[0].bytes;
      const agent = launch([...args, '--interval', '1s']);
      for (const c of cases) {
        serving = c.bytes;
        // A poll already under way may have fetched the previous bytes: the second refusal after the switch is about these.
        const mark = agent.logs().length;
        await agent.waitFor(`a first refusal after switching to the ${c.name} tampering`, is('crl_refused'), {
          from: mark,
          timeoutMs: 20_000,
        });
        const second = await agent.waitFor(`the ${c.name} tampering to be refused`, is('crl_refused'), {
          from: agent.logs().length,
          timeoutMs: 20_000,
        });
        assert.equal(second.log.code, c.code, JSON.stringify(second.log));
        assert.match(String(second.log.error), c.message);
        assert.equal(agent.exited(), null, 'a refused CRL does not stop the agent');
        assert.deepEqual(changedSince(files), [], `the ${c.name} tampering left the file byte for byte`);
      }
      assert.deepEqual(agent.events('crl_written'), []);

      // The control: the same server with the genuine bytes, and the agent writes them.
      serving = genuine;
      await agent.waitFor('the genuine CRL to be written', is('crl_written'), { timeoutMs: 20_000 });
      assert.deepEqual(changedSince(files), [out]);
      const text = readFileSync(out, 'utf8');
      assert.equal(crlBlocks(text).length, 1);
      assert.equal(
        (await opensslResult(['crl', '-in', out, '-outform', 'DER'])).stdoutBytes.equals(genuine),
        true,
        'the file holds the genuine CRL',
      );
      assert.ok(server.hits() >= 7);
      assert.deepEqual(await agent.stop(), { code: 0, signal: null }, agent.stderr());
    },
  );
});
