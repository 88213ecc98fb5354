// Lineage end to end, against a real `shortleaf serve`: a certificate renewed with and without a
// new key, and a second certificate for the same key, all reached by one keyCompromise revocation
// of the original (OCSP says so for each, renewals are refused, the key gets nothing again); a
// later keyCompromise replacing an earlier reason; and an agent whose lineage aged out bootstrapping
// again from its token file.
import assert from 'node:assert/strict';
import { copyFileSync, renameSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  addShortLivedProvisioner,
  leafOf,
  mintTokenCli,
  runAgent,
  startAgent,
  type AgentLog,
  type RunningAgent,
} from './helpers/agent.js';
import { shortleaf, shortleafOk, tempDir } from './helpers/cli.js';
import { databasePath } from './helpers/data.js';
import { startDevCa, type DevCa, type IssuedLeaf } from './helpers/dev-ca.js';
import { curl } from './helpers/http.js';
import { openssl } from './helpers/openssl.js';
import { ocsp, serialOf } from './helpers/revocation.js';
import { pollUntil } from './helpers/server.js';
import { Database } from './helpers/workspace.js';

const SUBJECT = 'lineage.internal';

describe('lineage: renewals, keys and revocation', () => {
  const dir = tempDir();
  let devCa: DevCa | undefined;
  const agents: RunningAgent[] = [];
  const ca = () => {
    assert.ok(devCa, 'the CA did not start');
    return devCa;
  };

  before(async () => {
    devCa = await startDevCa(dir.path, {
      beforeServe: (data) => addShortLivedProvisioner(data, 'short', dir.file('short.jwk')),
    });
  });
  after(async () => {
    try {
      for (const a of agents) await a.stop();
      await devCa?.server.stop();
      if (devCa !== undefined)
        assert.deepEqual(
          devCa.server.logs().filter((l) => l.level === 'error'),
          [],
          'no internal error logged',
        );
    } finally {
      dir.remove();
    }
  });

  const token = (subject = SUBJECT) =>
    mintTokenCli({ caUrl: ca().server.publicUrl, provisioner: 'admin', key: ca().adminKey, subject });
  /** Ages a certificate's lineage past the 30-day default maxLineageAge; the server reads it per request. */
  const age = (serial: string) => {
    const db = new Database(databasePath(ca().data));
    try {
      db.prepare('UPDATE certificates SET lineage_started_at = ? WHERE serial = ?').run(
        new Date(Date.now() - 31 * 86_400_000).toISOString(),
        serial,
      );
    } finally {
      db.close();
    }
  };
  /** `shortleaf renew` on a copy of `from`'s files; returns the renewed leaf (files named `name`). */
  async function renew(from: { cert: string; key: string }, name: string, rekey: boolean): Promise<IssuedLeaf> {
    const leaf: IssuedLeaf = {
      cert: dir.file(`${name}.pem`),
      key: dir.file(`${name}.key`),
      leaf: dir.file(`${name}-leaf.pem`),
      serial: '',
    };
    copyFileSync(from.cert, leaf.cert);
    copyFileSync(from.key, leaf.key);
    await shortleafOk([
      'renew',
      '--ca',
      ca().server.publicUrl,
      '--root',
      ca().roots,
      '--cert',
      leaf.cert,
      '--key',
      leaf.key,
      ...(rekey ? ['--rekey'] : []),
    ]);
    await openssl(['x509', '-in', leaf.cert, '-out', leaf.leaf]);
    leaf.serial = serialOf(leaf.leaf);
    return leaf;
  }
  /** POST /api/v1/sign with a CSR made by OpenSSL for an existing key. */
  async function signWithKey(
    keyFile: string,
    name: string,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const csr = await openssl([
      'req',
      '-new',
      '-key',
      keyFile,
      '-subj',
      `/CN=${SUBJECT}`,
      '-addext',
      `subjectAltName=DNS:${SUBJECT}`,
    ]);
    const body = dir.file(`${name}.json`);
    writeFileSync(body, JSON.stringify({ csr, token: await token() }));
    const res = await curl([
      '--cacert',
      ca().roots,
      '-H',
      'content-type: application/json',
      '--data-binary',
      `@${body}`,
      `${ca().server.publicUrl}/api/v1/sign`,
    ]);
    return { status: res.status, body: res.json<Record<string, unknown>>() };
  }
  const status = async (leaf: IssuedLeaf, extra: string[] = ['-no_nonce']) => {
    const q = await ocsp([
      '-issuer',
      ca().intermediates,
      '-cert',
      leaf.leaf,
      '-url',
      `${ca().server.statusUrl}/ocsp`,
      '-CAfile',
      ca().roots,
      ...extra,
    ]);
    assert.ok(q.verified, q.output);
    return q.single(leaf.leaf)!;
  };

  it(
    'keyCompromise of the original revokes every renewal, rekeyed or not, and every certificate with its key; the key gets nothing again',
    { timeout: 180_000 },
    async () => {
      const original = await ca().issue(SUBJECT, 'original');
      const kept = await renew(original, 'r1', false);
      const rekeyed = await renew(kept, 'r2', true);
      const latest = await renew(rekeyed, 'r3', false);
      // A second lineage on the original's key (a new token, the same key), renewed into a new key.
      const second = await signWithKey(original.key, 'same-key');
      assert.equal(second.status, 201, JSON.stringify(second.body));
      const sameKey: IssuedLeaf = {
        cert: dir.file('same-key.pem'),
        key: original.key,
        leaf: dir.file('same-key-leaf.pem'),
        serial: '',
      };
      writeFileSync(sameKey.cert, String(second.body.certificate) + String(second.body.chain ?? ''));
      await openssl(['x509', '-in', sameKey.cert, '-out', sameKey.leaf]);
      sameKey.serial = serialOf(sameKey.leaf);
      const sameKeyChild = await renew(sameKey, 'same-key-child', true);
      const bystander = await ca().issue(SUBJECT, 'bystander');
      const reached = [original, kept, rekeyed, latest, sameKey, sameKeyChild];
      // Pre-signed answers are cached now; the revocation must replace each of them.
      for (const leaf of [...reached, bystander]) assert.equal((await status(leaf)).status, 'good', leaf.serial);

      const r = await shortleafOk(['revoke', original.serial, '--reason', 'keyCompromise', '--data', ca().data]);
      assert.match(r.stdout, new RegExp(`^revoked ${original.serial} \\(keyCompromise\\)`));
      for (const leaf of reached.slice(1))
        assert.match(r.stdout, new RegExp(`also revoked ${leaf.serial} \\(keyCompromise\\)`));
      assert.match(r.stdout, /the key is blocked/);

      for (const leaf of reached) {
        for (const extra of [['-no_nonce'], []]) {
          const s = await pollUntil(
            `OCSP to say ${leaf.serial} is revoked`,
            async () => {
              const single = await status(leaf, extra);
              return single.status === 'revoked' ? single : undefined;
            },
            { timeoutMs: 15_000 },
          );
          assert.equal(s.reason, 'keyCompromise', leaf.serial);
        }
      }
      assert.equal((await status(bystander)).status, 'good', 'a certificate of another key and lineage is untouched');

      for (const leaf of [latest, sameKeyChild]) {
        const refused = await shortleaf([
          'renew',
          '--ca',
          ca().server.publicUrl,
          '--root',
          ca().roots,
          '--cert',
          leaf.cert,
          '--key',
          leaf.key,
        ]);
        assert.notEqual(refused.code, 0);
        assert.match(refused.stderr, /certificateRevoked/);
      }
      const blocked = await signWithKey(original.key, 'blocked');
      assert.equal(blocked.status, 403, JSON.stringify(blocked.body));
      assert.equal(blocked.body.type, 'urn:shortleaf:problem:keyBlocked');
    },
  );

  it(
    'keyCompromise replaces an earlier reason; OCSP then says keyCompromise with the first time',
    { timeout: 120_000 },
    async () => {
      const leaf = await ca().issue(SUBJECT, 'upgraded');
      await shortleafOk(['revoke', leaf.serial, '--reason', 'unspecified', '--data', ca().data]);
      const first = await pollUntil(
        'OCSP to say revoked',
        async () => {
          const s = await status(leaf);
          return s.status === 'revoked' ? s : undefined;
        },
        { timeoutMs: 15_000 },
      );
      const again = await shortleafOk(['revoke', leaf.serial, '--reason', 'keyCompromise', '--data', ca().data]);
      assert.match(again.stdout, /reason changed from unspecified to keyCompromise/);
      const upgraded = await pollUntil(
        'OCSP to say keyCompromise',
        async () => {
          const s = await status(leaf);
          return s.reason === 'keyCompromise' ? s : undefined;
        },
        { timeoutMs: 15_000 },
      );
      assert.equal(upgraded.revocationTime?.toISOString(), first.revocationTime?.toISOString());
      const third = await shortleafOk(['revoke', leaf.serial, '--reason', 'superseded', '--data', ca().data]);
      assert.match(third.stdout, /already revoked \(keyCompromise\)/);
    },
  );

  it(
    'an agent whose lineage aged out bootstraps again from its token file, and exits 2 when that token is spent',
    { timeout: 120_000 },
    async () => {
      const w = { cert: dir.file('agent.pem'), key: dir.file('agent.key'), tokenFile: dir.file('agent.token') };
      writeFileSync(w.tokenFile, `${await token()}\n`, { mode: 0o600 });
      const common = [
        '--ca',
        ca().server.publicUrl,
        '--root',
        ca().roots,
        '--cert',
        w.cert,
        '--key',
        w.key,
        '--san',
        SUBJECT,
        '--token-file',
        w.tokenFile,
        '--no-ari',
      ];
      const boot = await runAgent([...common, '--once']);
      assert.equal(boot.code, 0, boot.stderr);
      const leaf0 = leafOf(w.cert);
      age(leaf0.serial);
      writeFileSync(w.tokenFile, `${await token()}\n`, { mode: 0o600 });
      const again = await runAgent([...common, '--once', '--force']);
      assert.equal(again.code, 0, again.stderr);
      assert.match(String(again.logs.find((l) => l.event === 'renewal_failed')?.error), /lineageExpired/);
      assert.ok(
        again.logs.some((l) => l.event === 'reauthenticating' && l.via === 'token-file'),
        again.stderr,
      );
      assert.ok(
        again.logs.some((l) => l.event === 'bootstrapped'),
        again.stderr,
      );
      const leaf1 = leafOf(w.cert);
      assert.notEqual(leaf1.serial, leaf0.serial);

      age(leaf1.serial);
      const spent = await runAgent([...common, '--once', '--force']);
      assert.equal(spent.code, 2, spent.stderr);
      assert.match(spent.stderr, /lineageExpired/);
      assert.match(spent.stderr, /a new token is needed/);
      assert.equal(leafOf(w.cert).serial, leaf1.serial, 'the files stay');
    },
  );

  it(
    'a running agent whose lineage aged out bootstraps again from its token file and carries on',
    { timeout: 120_000 },
    async () => {
      const w = { cert: dir.file('running.pem'), key: dir.file('running.key'), tokenFile: dir.file('running.token') };
      const shortToken = () =>
        mintTokenCli({
          caUrl: ca().server.publicUrl,
          provisioner: 'short',
          key: dir.file('short.jwk'),
          subject: 'svc.test',
        });
      writeFileSync(w.tokenFile, `${await shortToken()}\n`, { mode: 0o600 });
      const is = (event: string) => (l: AgentLog) => l.event === event;
      // One-minute leaves renewed at 0.6 of their two-minute span: a renewal 12 s after each issue.
      const agent = startAgent([
        '--ca',
        ca().server.publicUrl,
        '--root',
        ca().roots,
        '--cert',
        w.cert,
        '--key',
        w.key,
        '--san',
        'svc.test',
        '--not-after',
        '1m',
        '--token-file',
        w.tokenFile,
        '--renew-at',
        '0.6',
        '--jitter',
        '0',
        '--no-ari',
        '--retry-min',
        '1s',
        '--retry-max',
        '4s',
      ]);
      agents.push(agent);
      const boot = await agent.waitFor('the first certificate', is('bootstrapped'), { timeoutMs: 30_000 });
      const leaf0 = leafOf(w.cert);
      age(leaf0.serial);
      // A fresh token, put in place as tooling should: a new file renamed over the old one.
      writeFileSync(`${w.tokenFile}.new`, `${await shortToken()}\n`, { mode: 0o600 });
      renameSync(`${w.tokenFile}.new`, w.tokenFile);
      const again = await agent.waitFor('the agent to authenticate again', is('reauthenticating'), {
        from: boot.index,
        timeoutMs: 60_000,
      });
      assert.equal(again.log.via, 'token-file');
      assert.match(String(again.log.reason), /lineageExpired/);
      await agent.waitFor('a new certificate from the token file', is('bootstrapped'), {
        from: again.index,
        timeoutMs: 30_000,
      });
      assert.notEqual(leafOf(w.cert).serial, leaf0.serial);
      assert.equal(agent.exited(), null, agent.stderr());
      assert.deepEqual(await agent.stop(), { code: 0, signal: null }, agent.stderr());
    },
  );
});
