// The certificate agent end to end: a real CA whose provisioner allows one-minute leaves, so the
// agent renews every few seconds; a real nginx reloaded by the agent's --exec hook; OpenSSL
// judging every file the agent writes. The CA goes away and comes back, the agent is SIGKILLed
// in the middle of renewals, and its certificate is revoked under it. Every wait is bounded.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, statSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  addShortLivedProvisioner,
  agentHealth,
  changedSince,
  credentialPair,
  leafOf,
  leftovers,
  mintTokenCli,
  nginxReloadCommand,
  runAgent,
  servedSerial,
  snapshot,
  startAgent,
  verifyLeaf,
  type AgentLog,
  type RunningAgent,
} from './helpers/agent.js';
import { shortleafOk, tempDir } from './helpers/cli.js';
import { startDevCa, type DevCa } from './helpers/dev-ca.js';
import { startEchoUpstream, startNginx, type EchoUpstream, type RunningNginx } from './helpers/nginx.js';
import { normalizeSerial } from './helpers/revocation.js';
import { freePort, pollUntil, startServer } from './helpers/server.js';

const PROVISIONER = 'short';
const SUBJECT = 'svc.test';
const SANS = ['svc.test', 'web.test'];
/** A one-minute leaf spans two minutes: the CA backdates notBefore by a minute. */
const ONE_MINUTE_LEAF_MS = 120_000;
/**
 * Renewal points are fractions of that two-minute span, so 0.5 would be the moment of issue;
 * 0.6 is 12 s after it, 0.65 is 18 s after it.
 */
const RENEW_AT = '0.6';
const lifetimeOf = (leaf: { notBefore: Date; notAfter: Date }) => leaf.notAfter.getTime() - leaf.notBefore.getTime();
const is = (event: string) => (l: AgentLog) => l.event === event;

describe('shortleaf agent: a certificate kept current with no human in the loop', () => {
  const dir = tempDir();
  let devCa: DevCa | undefined;
  let upstream: EchoUpstream | undefined;
  const agents: RunningAgent[] = [];
  const nginxes: RunningNginx[] = [];
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
      for (const n of nginxes) await n.stop();
      await upstream?.close();
      await devCa?.server.stop();
    } finally {
      dir.remove();
    }
  });

  const token = () =>
    mintTokenCli({
      caUrl: ca().server.publicUrl,
      provisioner: PROVISIONER,
      key: dir.file('short.jwk'),
      subject: SUBJECT,
      sans: SANS,
    });
  /** A folder of its own for one test's credential files. */
  const workdir = (name: string) => {
    const d = dir.file(name);
    mkdirSync(d);
    return { dir: d, cert: join(d, 'cert.pem'), key: join(d, 'key.pem'), file: (n: string) => join(d, n) };
  };
  const common = (w: { cert: string; key: string }) => [
    '--ca',
    ca().server.publicUrl,
    '--root',
    ca().roots,
    '--cert',
    w.cert,
    '--key',
    w.key,
    ...SANS.flatMap((s) => ['--san', s]),
    '--not-after',
    '1m',
  ];
  const launch = (args: string[], opts: { standalone?: boolean } = {}) => {
    const agent = startAgent(args, opts);
    agents.push(agent);
    return agent;
  };
  const verifies = async (cert: string) => {
    const v = await verifyLeaf(cert, ca().roots, ca().intermediates);
    assert.ok(v.ok, `openssl verify must accept ${cert}:\n${v.output}`);
  };
  const keyMatches = async (w: { cert: string; key: string }, what: string) => {
    const pair = await credentialPair(w.cert, w.key);
    assert.ok(pair.matches, `${what}: the key is not the certificate's\ncert: ${pair.certPub}\nkey:  ${pair.keyPub}`);
  };

  it(
    'renews three times in a row; each certificate verifies, is new, keeps the names and the key, and nginx serves it after the --exec reload',
    { timeout: 240_000 },
    async (t) => {
      const w = workdir('renewals');
      // What an init container does: the first certificate, then exit.
      const first = await runAgent([...common(w), '--token', await token(), '--once']);
      assert.equal(first.code, 0, first.stderr);
      assert.ok(first.logs.some(is('bootstrapped')), first.stderr);
      const leaf0 = leafOf(w.cert);
      assert.equal(leaf0.sans, SANS.map((s) => `DNS:${s}`).join(', '));
      assert.equal(lifetimeOf(leaf0), ONE_MINUTE_LEAF_MS);
      assert.equal(statSync(w.key).mode & 0o777, 0o600, 'the key file is private');
      await verifies(w.cert);
      await keyMatches(w, 'after bootstrap');
      const key0 = readFileSync(w.key);

      upstream ??= await startEchoUpstream();
      const nginx = await startNginx({
        dir: w.file('nginx'),
        port: await freePort(),
        serverCert: w.cert,
        serverKey: w.key,
        clientCa: ca().chain,
        upstreamPort: upstream.port,
        revocation: { ocspResponder: `${ca().server.statusUrl}/ocsp` },
      });
      nginxes.push(nginx);
      assert.equal(await servedSerial(nginx.site.port), leaf0.serial);

      const agent = launch([
        ...common(w),
        '--renew-at',
        RENEW_AT,
        '--jitter',
        '0',
        '--no-ari',
        '--retry-min',
        '1s',
        '--retry-max',
        '4s',
        '--exec',
        nginxReloadCommand(nginx.site.dir),
      ]);
      const loaded = await agent.waitFor('the agent to load the files', is('loaded'), { timeoutMs: 30_000 });
      assert.equal(loaded.log.serial, leaf0.serial);
      const serials = [leaf0.serial];
      let from = loaded.index;
      for (let i = 1; i <= 3; i++) {
        const scheduled = await agent.waitFor(`renewal ${i} to be scheduled`, is('renewal_scheduled'), {
          from,
          timeoutMs: 30_000,
        });
        const previous = leafOf(w.cert);
        assert.equal(scheduled.log.source, 'schedule');
        assert.equal(scheduled.log.serial, previous.serial);
        // --renew-at 0.6 with no jitter: exactly 60 % into the current certificate's span.
        assert.equal(Date.parse(String(scheduled.log.at)), previous.notBefore.getTime() + 0.6 * lifetimeOf(previous));

        const renewed = await agent.waitFor(`renewal ${i}`, is('renewed'), {
          from: scheduled.index,
          timeoutMs: 60_000,
        });
        const hook = await agent.waitFor(
          `the hook after renewal ${i}`,
          (l) => l.event === 'hook_succeeded' || l.event === 'hook_failed',
          { from: renewed.index, timeoutMs: 40_000 },
        );
        assert.equal(hook.log.event, 'hook_succeeded', `nginx -s reload: ${String(hook.log.detail)}`);
        from = hook.index + 1;

        const leaf = leafOf(w.cert);
        assert.equal(
          leaf.serial,
          normalizeSerial(String(renewed.log.serial)),
          'the file holds the certificate the agent announced',
        );
        assert.ok(
          !serials.includes(leaf.serial),
          `renewal ${i} brought a new serial (${leaf.serial}; before: ${serials.join(', ')})`,
        );
        serials.push(leaf.serial);
        assert.equal(leaf.sans, leaf0.sans, 'the same names');
        assert.equal(lifetimeOf(leaf), ONE_MINUTE_LEAF_MS, 'a renewal keeps the requested length');
        assert.ok(leaf.notAfter > previous.notAfter);
        await verifies(w.cert);
        assert.ok(readFileSync(w.key).equals(key0), `renewal ${i} without --rekey left the key file byte for byte`);
        await keyMatches(w, `after renewal ${i}`);
        // `nginx -s reload` returns once it has signalled the master; new workers take over soon after.
        await pollUntil(
          `nginx to present ${leaf.serial} after renewal ${i}`,
          async () => ((await servedSerial(nginx.site.port)) === leaf.serial ? true : undefined),
          { timeoutMs: 20_000, intervalMs: 200 },
        );
        t.diagnostic(`renewal ${i}: serial ${leaf.serial}, nginx serves it`);
      }
      assert.deepEqual(agent.events('renewal_failed'), [], 'no renewal failed');
      assert.deepEqual(await agent.stop(), { code: 0, signal: null }, agent.stderr());
      assert.ok(agent.events('stopping').length === 1, agent.stderr());
      assert.equal(nginx.exited(), false, nginx.errorLog());
    },
  );

  it(
    '--rekey: a renewal brings a new private key (0600) that matches the new certificate; ARI on: renewalInfo sets the time',
    { timeout: 180_000 },
    async () => {
      const w = workdir('rekey');
      // No --no-ari: the agent asks the CA's renewalInfo (RFC 9773) for its window.
      const agent = launch([
        ...common(w),
        '--token',
        await token(),
        '--rekey',
        '--jitter',
        '0',
        '--retry-min',
        '1s',
        '--retry-max',
        '4s',
      ]);
      const boot = await agent.waitFor('the first certificate', is('bootstrapped'), { timeoutMs: 30_000 });
      const leaf0 = leafOf(w.cert);
      const key0 = readFileSync(w.key);
      await keyMatches(w, 'after bootstrap');

      for (let i = 1, from = boot.index; i <= 2; i++) {
        const scheduled = await agent.waitFor(`renewal ${i} to be scheduled`, is('renewal_scheduled'), {
          from,
          timeoutMs: 30_000,
        });
        const current = leafOf(w.cert);
        assert.equal(scheduled.log.source, 'renewalInfo', JSON.stringify(scheduled.log));
        // The CA's window: centred on two-thirds of the span, a tenth of it wide.
        const centre = current.notBefore.getTime() + (2 / 3) * lifetimeOf(current);
        const at = Date.parse(String(scheduled.log.at));
        assert.ok(
          Math.abs(at - centre) <= lifetimeOf(current) / 20 + 1_000,
          `${scheduled.log.at} is in the window around ${new Date(centre).toISOString()}`,
        );
        const renewed = await agent.waitFor(`renewal ${i}`, is('renewed'), {
          from: scheduled.index,
          timeoutMs: 90_000,
        });
        from = renewed.index;
        if (i > 1) continue;

        const leaf1 = leafOf(w.cert);
        assert.equal(leaf1.serial, normalizeSerial(String(renewed.log.serial)));
        assert.notEqual(leaf1.serial, leaf0.serial);
        assert.equal(leaf1.sans, leaf0.sans);
        assert.ok(!readFileSync(w.key).equals(key0), 'a new key file');
        assert.equal(statSync(w.key).mode & 0o777, 0o600, 'the new key file is private from the start');
        await keyMatches(w, 'after the rekeyed renewal');
        await verifies(w.cert);
      }
      assert.deepEqual(agent.events('renewal_failed'), []);
      assert.deepEqual(await agent.stop(), { code: 0, signal: null }, agent.stderr());
    },
  );

  it(
    'a CA outage: renewals fail with growing backoff, the files stay byte for byte, /health reports lastError; the CA returns on the same port and the agent renews',
    { timeout: 180_000 },
    async () => {
      const w = workdir('outage');
      const healthPort = await freePort();
      const agent = launch([
        ...common(w),
        '--token',
        await token(),
        '--renew-at',
        RENEW_AT,
        '--jitter',
        '0',
        '--no-ari',
        '--retry-min',
        '1s',
        '--retry-max',
        '4s',
        '--health-addr',
        `127.0.0.1:${healthPort}`,
      ]);
      const boot = await agent.waitFor('the first certificate', is('bootstrapped'), { timeoutMs: 30_000 });
      await agent.waitFor('the first renewal to be scheduled', is('renewal_scheduled'), {
        from: boot.index,
        timeoutMs: 30_000,
      });
      const leaf0 = leafOf(w.cert);
      const healthy = await agentHealth(healthPort);
      assert.equal(healthy.status, 200, JSON.stringify(healthy.body));
      assert.equal(healthy.body.serial, leaf0.serial);
      assert.equal(healthy.body.lastError, null);

      const files = snapshot([w.cert, w.key]);
      const old = ca().server;
      const { apiPort, statusPort, publicUrl } = old;
      const outageFrom = agent.logs().length;
      assert.equal(agent.events('renewed').length, 0, 'the outage starts before the first renewal');
      await old.stop();

      const third = await agent.waitFor(
        'three failed renewal attempts',
        (l) => l.event === 'renewal_failed' && l.attempt === 3,
        { from: outageFrom, timeoutMs: 60_000 },
      );
      const failed = agent
        .logs()
        .slice(outageFrom, third.index + 1)
        .filter(is('renewal_failed'));
      assert.deepEqual(
        failed.map((l) => l.attempt),
        [1, 2, 3],
      );
      for (const [i, l] of failed.entries()) {
        assert.equal(l.keptFiles, true);
        assert.equal(l.serial, leaf0.serial);
        assert.ok(typeof l.error === 'string' && l.error.length > 0, JSON.stringify(l));
        // Backoff with jitter: attempt n waits between half and all of min(1 s · 2^(n-1), 4 s).
        const ceiling = Math.min(4_000, 1_000 * 2 ** i);
        assert.ok(
          typeof l.retryInMs === 'number' && l.retryInMs >= ceiling / 2 && l.retryInMs <= ceiling,
          `attempt ${l.attempt}: retryInMs ${String(l.retryInMs)} within [${ceiling / 2}, ${ceiling}]`,
        );
      }
      assert.ok((failed[2]!.retryInMs as number) > (failed[0]!.retryInMs as number), 'the waits grow');
      const sick = await agentHealth(healthPort);
      assert.equal(sick.body.serial, leaf0.serial);
      assert.ok(
        typeof sick.body.lastError === 'string' && sick.body.lastError.length > 0,
        `lastError while the CA is down: ${JSON.stringify(sick.body)}`,
      );
      assert.ok(Number(sick.body.failures) >= 3, JSON.stringify(sick.body));
      assert.deepEqual(changedSince(files), [], 'failed renewals leave the files byte for byte');
      assert.ok(
        Date.now() < leaf0.notAfter.getTime() - 15_000,
        'the test brings the CA back well before the certificate expires',
      );

      const restarted = await startServer({
        data: ca().data,
        noListenFlags: true,
        args: ['--listen', `127.0.0.1:${apiPort}`, '--status-listen', `127.0.0.1:${statusPort}`],
      });
      ca().server = restarted;
      assert.equal(restarted.publicUrl, publicUrl, 'the CA is back at the URL the agent knows');

      const renewed = await agent.waitFor('a renewal once the CA is back', is('renewed'), {
        from: third.index,
        timeoutMs: 30_000,
      });
      assert.ok(
        Date.parse(String(renewed.log.time)) < leaf0.notAfter.getTime(),
        'renewed before the old certificate expired',
      );
      const leaf1 = leafOf(w.cert);
      assert.equal(leaf1.serial, normalizeSerial(String(renewed.log.serial)));
      assert.notEqual(leaf1.serial, leaf0.serial);
      await verifies(w.cert);
      assert.ok(readFileSync(w.key).equals(files.get(w.key)!), 'the key stays');
      const recovered = await pollUntil(
        '/health to show the new certificate',
        async () => {
          const h = await agentHealth(healthPort);
          return h.body.serial === leaf1.serial ? h : undefined;
        },
        { timeoutMs: 10_000, intervalMs: 100 },
      );
      assert.equal(recovered.status, 200);
      assert.equal(recovered.body.lastError, null, JSON.stringify(recovered.body));
      assert.equal(recovered.body.failures, 0);
      assert.deepEqual(await agent.stop(), { code: 0, signal: null }, agent.stderr());
    },
  );

  for (const rekey of [false, true]) {
    const title = rekey
      ? 'SIGKILL at random moments of --once --rekey renewals: both files always parse, and after the next start the key matches the certificate'
      : 'SIGKILL at random moments of --once renewals: at every instant the files parse, the key is unchanged and matches the certificate';
    it(title, { timeout: 280_000 }, async (t) => {
      const w = workdir(rekey ? 'kill-rekey' : 'kill');
      const base = [...common(w), '--no-ari', '--jitter', '0', ...(rekey ? ['--rekey'] : [])];
      const boot = await runAgent([...base, '--once', '--token', await token()], { standalone: true });
      assert.equal(boot.code, 0, boot.stderr);
      const key0 = readFileSync(w.key);
      // --renew-at 0.05 (the lowest the schedule allows) is due at once: every run renews.
      const renewing = [...base, '--once', '--renew-at', '0.05'];

      // A probe run: how long a renewal takes once scheduled, and how many file-system events its
      // write makes in the folder (temporary files, journal, renames, unlinks). The kills aim at both.
      const probeEvents = { count: 0 };
      const probeWatch = watch(w.dir, () => probeEvents.count++);
      const probe = await runAgent(renewing, { standalone: true });
      probeWatch.close();
      assert.equal(probe.code, 0, probe.stderr);
      const stamp = (e: string) => Date.parse(String(probe.logs.find(is(e))?.time));
      const renewalMs = stamp('renewed') - stamp('renewal_scheduled');
      assert.ok(
        Number.isFinite(renewalMs) && probeEvents.count > 0,
        `${probe.stderr}\n${probeEvents.count} file events`,
      );
      const aimMs = Math.max(50, Math.ceil(renewalMs * 1.5));
      t.diagnostic(
        `a --once renewal takes ${renewalMs} ms after renewal_scheduled and makes ${probeEvents.count} file events`,
      );

      const ITERATIONS = 28;
      const tally = {
        duringStartUp: 0,
        timed: 0,
        onFileEvent: 0,
        beforeRenewal: 0,
        afterRenewal: 0,
        leftovers: 0,
        journal: 0,
        mismatched: 0,
        finished: 0,
      };
      for (let i = 1; i <= ITERATIONS; i++) {
        const serialBefore = leafOf(w.cert).serial;
        // A kill at random: during start-up (reading and recovering the files), at a random time
        // in the stretch from scheduling the renewal to having written it, or right on the n-th
        // file event of the write (n at random), which lands inside the write itself.
        const how = (['duringStartUp', 'timed', 'onFileEvent', 'onFileEvent'] as const)[i % 4]!;
        tally[how]++;
        let onEvent: (() => void) | undefined;
        const watcher = watch(w.dir, () => onEvent?.());
        const agent = launch(renewing, { standalone: true });
        try {
          if (how === 'duringStartUp') await sleep(5 + Math.floor(Math.random() * 400));
          else if (how === 'timed') {
            await agent.waitFor('the renewal to be scheduled', is('renewal_scheduled'), { timeoutMs: 30_000 });
            await sleep(Math.floor(Math.random() * aimMs));
          } else {
            const nth = 1 + Math.floor(Math.random() * probeEvents.count);
            let seen = 0;
            const killed = new Promise<void>((resolve) => {
              onEvent = () => {
                if (++seen < nth) return;
                agent.child.kill('SIGKILL');
                resolve();
              };
            });
            await Promise.race([killed, agent.waitForExit(30_000)]);
          }
        } finally {
          watcher.close();
        }
        agent.child.kill('SIGKILL');
        const exit = await agent.waitForExit(10_000);
        if (exit.signal === null) {
          tally.finished++;
          assert.equal(exit.code, 0, agent.stderr());
        }
        const what = `kill ${i}, ${how} (${exit.signal ?? `exit ${exit.code}`})`;

        // Before any recovery: both files parse (each is replaced by one rename).
        const pair = await credentialPair(w.cert, w.key);
        const serialAfter = leafOf(w.cert).serial;
        if (serialAfter === serialBefore) tally.beforeRenewal++;
        else tally.afterRenewal++;
        const left = [...leftovers(w.cert), ...leftovers(w.key)];
        if (left.length > 0) tally.leftovers++;
        for (const f of left)
          assert.match(
            f,
            /^(cert\.pem\.(pending\.)?|key\.pem\.)tmp-[0-9a-f]{16}$|^cert\.pem\.pending$/,
            `${what}: only the agent's own temporary files and journal`,
          );
        if (!rekey) {
          assert.ok(readFileSync(w.key).equals(key0), `${what}: without --rekey the key file never changes`);
          assert.ok(
            pair.matches,
            `${what}: the key does not match the certificate on disk\n${pair.certPub}\n${pair.keyPub}`,
          );
          assert.ok(
            !left.some((f) => f.endsWith('.pending')),
            `${what}: a renewal that changes only the certificate needs no journal`,
          );
          continue;
        }
        if (left.some((f) => f.endsWith('.pending'))) tally.journal++;
        if (!pair.matches) {
          tally.mismatched++;
          assert.ok(
            left.includes('cert.pem.pending'),
            `${what}: the key and certificate differ, so the journal must be there to finish the write: ${left.join(', ')}`,
          );
        }
        // The next start recovers: a --once run that is not due (0.9 of the span) only reads the
        // files, as the agent does, finishing an interrupted write first.
        const check = await runAgent([...base, '--once', '--renew-at', '0.9'], { standalone: true });
        assert.equal(check.code, 0, `${what}: the next start must recover the files\n${check.stderr}`);
        await keyMatches(w, `${what}, after the next start`);
        assert.deepEqual(
          [...leftovers(w.cert), ...leftovers(w.key)],
          [],
          `${what}: the next start removes the temporary files and the journal`,
        );
      }
      t.diagnostic(`${ITERATIONS} kills: ${JSON.stringify(tally)}`);

      // A run that is left alone renews, cleans up, and leaves a verifiable certificate.
      const last = await runAgent(renewing, { standalone: true });
      assert.equal(last.code, 0, last.stderr);
      assert.ok(last.logs.some(is('renewed')), last.stderr);
      await keyMatches(w, 'after a clean run');
      await verifies(w.cert);
      assert.deepEqual([...leftovers(w.cert), ...leftovers(w.key)], []);
      assert.ok(
        tally.afterRenewal > 0 && tally.beforeRenewal > 0,
        `the kills landed both before and after writes: ${JSON.stringify(tally)}`,
      );
      if (!rekey) assert.ok(readFileSync(w.key).equals(key0));
    });
  }

  it(
    'revoked: the renewal is refused with certificateRevoked, the files stay byte for byte, and without --token-file the agent exits 2',
    { timeout: 120_000 },
    async () => {
      const w = workdir('revoked');
      const agent = launch([
        ...common(w),
        '--token',
        await token(),
        '--renew-at',
        '0.65',
        '--jitter',
        '0',
        '--no-ari',
        '--retry-min',
        '1s',
        '--retry-max',
        '4s',
      ]);
      await agent.waitFor('the first certificate', is('bootstrapped'), { timeoutMs: 30_000 });
      const leaf = leafOf(w.cert);
      const files = snapshot([w.cert, w.key]);
      await shortleafOk(['revoke', leaf.serial, '--reason', 'keyCompromise', '--data', ca().data]);
      assert.equal(agent.events('renewal_failed').length, 0, 'revoked before the agent tried to renew');

      const exit = await agent.waitForExit(90_000);
      assert.deepEqual(exit, { code: 2, signal: null }, agent.stderr());
      const failed = agent.events('renewal_failed');
      assert.equal(failed.length, 1, 'no retries: renewing again cannot help');
      assert.match(String(failed[0]!.error), /certificateRevoked/);
      assert.equal(failed[0]!.keptFiles, true);
      assert.equal(failed[0]!.retryInMs, undefined);
      const needed = agent.events('new_token_needed');
      assert.equal(needed.length, 1, agent.stderr());
      assert.match(String(needed[0]!.reason), /certificateRevoked/);
      assert.match(agent.stderr(), /^shortleaf agent: .*certificateRevoked.*a new token is needed$/m);
      assert.deepEqual(changedSince(files), [], 'the refused renewal left the files byte for byte');
    },
  );

  it(
    'revoked with --token-file: the agent waits for a new token, and a fresh token in the file bootstraps a new certificate',
    { timeout: 120_000 },
    async () => {
      const w = workdir('revoked-token-file');
      const tokenFile = w.file('token');
      writeFileSync(tokenFile, `${await token()}\n`, { mode: 0o600 });
      const agent = launch([
        ...common(w),
        '--token-file',
        tokenFile,
        '--renew-at',
        '0.65',
        '--jitter',
        '0',
        '--no-ari',
        '--retry-min',
        '1s',
        '--retry-max',
        '4s',
      ]);
      const boot = await agent.waitFor('the first certificate', is('bootstrapped'), { timeoutMs: 30_000 });
      const leaf0 = leafOf(w.cert);
      const files = snapshot([w.cert, w.key]);
      await shortleafOk(['revoke', leaf0.serial, '--reason', 'keyCompromise', '--data', ca().data]);

      const waiting = await agent.waitFor('the agent to wait for a new token', is('waiting_for_new_token'), {
        from: boot.index,
        timeoutMs: 90_000,
      });
      assert.match(String(waiting.log.reason), /certificateRevoked/);
      assert.equal(waiting.log.tokenFile, tokenFile);
      await sleep(3_000); // longer than the token-file poll: the spent token still in the file is not retried
      assert.equal(agent.exited(), null, `it waits instead of exiting:\n${agent.stderr()}`);
      assert.equal(
        agent.logs().slice(waiting.index).filter(is('bootstrap_failed')).length,
        0,
        'the spent token was not tried again',
      );
      assert.deepEqual(changedSince(files), [], 'the files stay while it waits');

      // A fresh token, put in place as an operator's tooling should: a new file renamed over the old.
      writeFileSync(`${tokenFile}.new`, `${await token()}\n`, { mode: 0o600 });
      renameSync(`${tokenFile}.new`, tokenFile);
      const again = await agent.waitFor('a new certificate from the new token', is('bootstrapped'), {
        from: waiting.index,
        timeoutMs: 30_000,
      });
      const leaf1 = leafOf(w.cert);
      assert.equal(leaf1.serial, normalizeSerial(String(again.log.serial)));
      assert.notEqual(leaf1.serial, leaf0.serial);
      assert.equal(leaf1.sans, leaf0.sans);
      await verifies(w.cert);
      await keyMatches(w, 'after the new bootstrap');
      await agent.waitFor(
        'the new certificate to be scheduled for renewal',
        (l) => l.event === 'renewal_scheduled' && l.serial === leaf1.serial,
        { from: again.index, timeoutMs: 30_000 },
      );
      assert.deepEqual(await agent.stop(), { code: 0, signal: null }, agent.stderr());
    },
  );
});
