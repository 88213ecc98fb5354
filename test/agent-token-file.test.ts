// `shortleaf agent --token-file`: the agent reads its token from a file every time it must
// authenticate, because the file's owner (a kubelet, an operator's tooling) replaces it. A real CA,
// real agent processes; the file is missing, empty, rotated and the certificate revoked under the
// agent. No token ever reaches the agent's log. Every wait is bounded.
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  addShortLivedProvisioner,
  leafOf,
  mintTokenCli,
  startAgent,
  verifyLeaf,
  type AgentLog,
  type RunningAgent,
} from './helpers/agent.js';
import { shortleafOk, tempDir } from './helpers/cli.js';
import { startDevCa, type DevCa } from './helpers/dev-ca.js';

const PROVISIONER = 'short';
const SUBJECT = 'svc.test';
const SANS = ['svc.test'];
const is = (event: string) => (l: AgentLog) => l.event === event;

/** Puts a token in place as a kubelet or careful tooling does: a new file renamed over the old one. */
function rotate(file: string, token: string): void {
  writeFileSync(`${file}.new`, `${token}\n`, { mode: 0o600 });
  renameSync(`${file}.new`, file);
}

describe('shortleaf agent --token-file with one-time JWK tokens', () => {
  const dir = tempDir();
  let devCa: DevCa | undefined;
  const agents: RunningAgent[] = [];
  /** Every token the tests wrote: none may appear in any agent's output. */
  const tokens: string[] = [];
  const ca = () => {
    assert.ok(devCa, 'the CA did not start');
    return devCa;
  };

  before(async () => {
    devCa = await startDevCa(dir.path, {
      beforeServe: (data) => addShortLivedProvisioner(data, PROVISIONER, dir.file('short.jwk')),
    });
  });

  after(async () => {
    try {
      for (const a of agents) await a.stop();
      for (const a of agents)
        for (const t of tokens) assert.ok(!a.stderr().includes(t), 'a token was written to the agent log');
      await devCa?.server.stop();
    } finally {
      dir.remove();
    }
  });

  const token = async () => {
    const t = await mintTokenCli({
      caUrl: ca().server.publicUrl,
      provisioner: PROVISIONER,
      key: dir.file('short.jwk'),
      subject: SUBJECT,
      sans: SANS,
    });
    tokens.push(t);
    return t;
  };
  const workdir = (name: string) => {
    const d = dir.file(name);
    mkdirSync(d);
    return { cert: join(d, 'cert.pem'), key: join(d, 'key.pem'), tokenFile: join(d, 'token') };
  };
  const launch = (w: ReturnType<typeof workdir>, extra: string[] = []) => {
    const agent = startAgent([
      '--ca',
      ca().server.publicUrl,
      '--root',
      ca().roots,
      '--cert',
      w.cert,
      '--key',
      w.key,
      '--token-file',
      w.tokenFile,
      ...SANS.flatMap((s) => ['--san', s]),
      '--not-after',
      '1m',
      '--renew-at',
      '0.6',
      '--jitter',
      '0',
      '--no-ari',
      '--token-poll',
      '200ms',
      ...extra,
    ]);
    agents.push(agent);
    return agent;
  };

  it(
    'a missing, then empty token file is a clear error retried with backoff, not a crash; the token written later bootstraps',
    { timeout: 90_000 },
    async () => {
      const w = workdir('missing');
      const agent = launch(w, ['--retry-min', '500ms', '--retry-max', '2s']);
      const missing = await agent.waitFor('the agent to say the file is missing', is('token_file_unreadable'), {
        timeoutMs: 30_000,
      });
      assert.equal(missing.log.level, 'error');
      assert.equal(missing.log.tokenFile, w.tokenFile);
      assert.equal(missing.log.error, `cannot read the token file ${w.tokenFile}: it does not exist`);
      assert.equal(typeof missing.log.retryInMs, 'number');
      const again = await agent.waitFor(
        'a second attempt, after a backoff',
        (l) => l.event === 'token_file_unreadable' && l.attempt === 2,
        { from: missing.index + 1, timeoutMs: 10_000 },
      );
      assert.ok(Number(again.log.retryInMs) > 0);

      writeFileSync(w.tokenFile, '\n');
      const empty = await agent.waitFor(
        'the agent to say the file is empty',
        (l) => l.event === 'token_file_unreadable' && l.error === `the token file ${w.tokenFile} is empty`,
        { from: again.index + 1, timeoutMs: 10_000 },
      );
      assert.equal(agent.exited(), null, `it keeps running:\n${agent.stderr()}`);

      rotate(w.tokenFile, await token());
      const boot = await agent.waitFor('the first certificate from the token written later', is('bootstrapped'), {
        from: empty.index,
        timeoutMs: 30_000,
      });
      assert.equal(leafOf(w.cert).serial, String(boot.log.serial).toLowerCase().replace(/^0+/, ''));
      const v = await verifyLeaf(w.cert, ca().roots, ca().intermediates);
      assert.ok(v.ok, v.output);
      assert.equal(agent.events('bootstrap_failed').length, 0, 'no token was sent before there was one');
    },
  );

  it(
    'revoked: the file is read again as it is now, so a token rotated into it beforehand gets a certificate back at once',
    { timeout: 120_000 },
    async () => {
      const w = workdir('revoked');
      rotate(w.tokenFile, await token());
      const agent = launch(w, ['--retry-min', '1s', '--retry-max', '4s']);
      const boot = await agent.waitFor('the first certificate', is('bootstrapped'), { timeoutMs: 30_000 });
      const leaf0 = leafOf(w.cert);
      // Rotated while the certificate is good: the agent has no reason to look at it yet.
      rotate(w.tokenFile, await token());
      await shortleafOk(['revoke', leaf0.serial, '--reason', 'keyCompromise', '--data', ca().data]);

      const reauth = await agent.waitFor('the agent to authenticate again', is('reauthenticating'), {
        from: boot.index + 1,
        timeoutMs: 60_000,
      });
      assert.equal(reauth.log.via, 'token-file');
      assert.match(String(reauth.log.reason), /certificateRevoked/);
      const again = await agent.waitFor('a new certificate from the rotated token', is('bootstrapped'), {
        from: reauth.index,
        timeoutMs: 30_000,
      });
      const leaf1 = leafOf(w.cert);
      assert.notEqual(leaf1.serial, leaf0.serial);
      assert.equal(leaf1.serial, String(again.log.serial).toLowerCase().replace(/^0+/, ''));
      assert.equal(leaf1.sans, leaf0.sans);
      assert.deepEqual(agent.logs().slice(reauth.index).filter(is('waiting_for_new_token')), [], 'no wait');
      await agent.waitFor('the new certificate to be renewed over mutual TLS', (l) => l.event === 'renewed', {
        from: again.index,
        timeoutMs: 45_000,
      });
    },
  );

  it(
    'revoked with a spent token still in the file: one refused try, then it waits for the file to change',
    { timeout: 120_000 },
    async () => {
      const w = workdir('spent');
      rotate(w.tokenFile, await token());
      const agent = launch(w, ['--retry-min', '1s', '--retry-max', '4s']);
      const boot = await agent.waitFor('the first certificate', is('bootstrapped'), { timeoutMs: 30_000 });
      await shortleafOk(['revoke', leafOf(w.cert).serial, '--data', ca().data]);
      const waiting = await agent.waitFor('the agent to wait for a new token', is('waiting_for_new_token'), {
        from: boot.index,
        timeoutMs: 60_000,
      });
      assert.match(String(waiting.log.reason), /certificateRevoked.*the CA refused the token/);
      const tried = agent.logs().slice(boot.index).filter(is('bootstrap_failed'));
      assert.equal(tried.length, 1, 'the spent token was tried once');
      rotate(w.tokenFile, await token());
      await agent.waitFor('a new certificate from the new token', is('bootstrapped'), {
        from: waiting.index,
        timeoutMs: 30_000,
      });
    },
  );
});
