// Faults with several `shortleaf serve` instances on one PostgreSQL (issue 14, "Faults"), on a
// PostgreSQL server of this test's own so it can be stopped: kill -9 of one instance under load loses
// nothing a client received and issues no serial twice; a PostgreSQL restart under load gives clients
// only 201s and 503 problem documents (never a 500, never a dropped connection), and every instance
// serves again by itself once the database is back; `serve` started while the database is down
// waits for it and says so. Every statement the server logged goes to the run's secret scan
// (destroy() copies its log into SHORTLEAF_TEST_LOG_DIR).
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { startPostgres, type PostgresServer } from '@shortleaf/store/postgres-testing';
import {
  adminToken,
  databaseCertificates,
  crlWatcher,
  issue,
  issuedOf,
  msUntil,
  newCsr,
  ocspWatcher,
  revokeVia,
  sign,
  startCluster,
  writeLeafFiles,
  type Cluster,
  type Issued,
} from './helpers/ha.js';
import type { HttpResult } from './helpers/http.js';
import { shortleafArgs, track } from './helpers/cli.js';
import { pollUntil } from './helpers/server.js';

const INSTANCES = 3;
/** Concurrent clients, spread over the instances as a load balancer would. */
const CLIENTS = 9;
/** Once the database is back, each instance must issue again within this (it reconnects by itself). */
const RECOVERY_BOUND_MS = 30_000;
const CRL_BOUND_MS = 5_000;
const OCSP_BOUND_MS = 1_000;

const label = (i: number) => `instance ${String.fromCharCode(65 + i)}`;

interface Outcome {
  instance: number;
  at: number;
  kind: '201' | '503' | 'other' | 'connection';
  detail: string;
}

/**
 * Clients issuing in a loop, each starting on its own instance and moving to the next one after
 * every request (a round-robin balancer). A fresh token per attempt: a request an instance died on
 * may have spent its token. Records every outcome and every certificate received.
 */
function startLoad(cluster: Cluster, opts: { skip?: (i: number) => boolean } = {}) {
  const outcomes: Outcome[] = [];
  const received: Array<Issued & { instance: number }> = [];
  const inFlight = cluster.instances.map(() => 0);
  let stopping = false;
  const client = async (c: number) => {
    const name = `load-${c}.ha.test`;
    const { csr } = await newCsr(name);
    for (let n = c; !stopping; n++) {
      const i = n % cluster.instances.length;
      if (opts.skip?.(i)) continue;
      const at = Date.now();
      let res: HttpResult;
      inFlight[i]!++;
      try {
        res = await sign(
          cluster,
          cluster.instances[i]!,
          { csr, token: await adminToken(cluster, name) },
          { timeoutMs: 15_000 },
        );
      } catch (err) {
        inFlight[i]!--;
        outcomes.push({ instance: i, at, kind: 'connection', detail: (err as Error).message });
        await new Promise((r) => setTimeout(r, 100)); // pacing while an instance is gone
        continue;
      }
      inFlight[i]!--;
      if (res.status === 201) {
        received.push({ ...issuedOf(res), instance: i });
        outcomes.push({ instance: i, at, kind: '201', detail: '' });
      } else if (res.status === 503 && /^application\/problem\+json\b/.test(res.contentType)) {
        outcomes.push({ instance: i, at, kind: '503', detail: res.text.slice(0, 200) });
      } else {
        outcomes.push({
          instance: i,
          at,
          kind: 'other',
          detail: `HTTP ${res.status} ${res.contentType} ${res.text.slice(0, 200)}`,
        });
      }
    }
  };
  const clients = Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
  return {
    outcomes,
    received,
    /** Requests sent to each instance and not yet answered. */
    inFlight,
    /** Resolves once `n` more certificates than now have been received (bounded). */
    async issued(n: number, what: string, timeoutMs = 60_000) {
      const target = received.length + n;
      await pollUntil(what, async () => (received.length >= target ? true : undefined), { timeoutMs, intervalMs: 50 });
    },
    async stop() {
      stopping = true;
      await clients;
    },
  };
}

const counts = (outcomes: Outcome[]) => {
  const by = new Map<string, number>();
  for (const o of outcomes) by.set(o.kind, (by.get(o.kind) ?? 0) + 1);
  return [...by].map(([k, n]) => `${n}× ${k}`).join(', ');
};

/** Distinct outcomes with how often each came, e.g. "12× instance B: other HTTP 500 …". */
const tally = (outcomes: Outcome[]): string[] => {
  const by = new Map<string, number>();
  for (const o of outcomes) {
    const key = `${label(o.instance)}: ${o.kind} ${o.detail}`;
    by.set(key, (by.get(key) ?? 0) + 1);
  }
  return [...by].map(([k, n]) => `${n}× ${k}`);
};

/**
 * Revokes `leaf` through instance `via` and checks that each of `instances` answers revoked on OCSP
 * within 1 s and lists it in its CRL within 5 s, printing the times.
 */
async function assertRevocationReaches(
  t: TestContext,
  cluster: Cluster,
  leaf: Issued,
  via: number,
  instances: number[],
  context: string,
): Promise<void> {
  const files = writeLeafFiles(cluster, leaf);
  const ocsps = await Promise.all(instances.map((i) => ocspWatcher(cluster, cluster.instances[i]!, files)));
  const crls = instances.map((i) => crlWatcher(cluster.instances[i]!));
  for (const [k, w] of ocsps.entries())
    assert.equal((await w.look()).value, 'good', `${label(instances[k]!)}: good before the revocation`);
  for (const w of crls) await w.look();
  const res = await revokeVia(cluster, cluster.instances[via]!, leaf.serial);
  const since = Date.now();
  assert.equal(res.status, 200, `revoke at ${label(via)} (${context}): HTTP ${res.status} ${res.text}`);
  const times = await Promise.all(
    instances.map(async (i, k) => ({
      ocsp: await msUntil(`${label(i)}'s OCSP to say revoked`, ocsps[k]!, (v) => v === 'revoked', {
        since,
        timeoutMs: OCSP_BOUND_MS + 15_000,
        intervalMs: 10,
      }),
      crl: await msUntil(`${label(i)}'s CRL to list it`, crls[k]!, (c) => c.entries.has(leaf.serial), {
        since,
        timeoutMs: CRL_BOUND_MS + 15_000,
        intervalMs: 50,
      }),
    })),
  );
  t.diagnostic(
    `revocation through ${label(via)} (${context}): ${times.map((x, k) => `${label(instances[k]!)} OCSP ${x.ocsp} ms, CRL ${x.crl} ms`).join('; ')}`,
  );
  for (const [k, x] of times.entries()) {
    assert.ok(
      x.ocsp <= OCSP_BOUND_MS,
      `${label(instances[k]!)}'s OCSP said revoked after ${x.ocsp} ms (bound ${OCSP_BOUND_MS} ms, ${context})`,
    );
    assert.ok(
      x.crl <= CRL_BOUND_MS,
      `${label(instances[k]!)}'s CRL listed it after ${x.crl} ms (bound ${CRL_BOUND_MS} ms, ${context})`,
    );
  }
}

/** Every certificate a client received is in the database as issued, and no serial came twice. */
async function assertNothingLost(cluster: Cluster, received: Array<Issued & { instance: number }>) {
  const serials = received.map((r) => r.serial);
  assert.equal(new Set(serials).size, serials.length, 'no serial was delivered twice');
  const inDb = await databaseCertificates(cluster);
  assert.deepEqual(
    received
      .filter((r) => inDb.get(r.serial)?.status !== 'valid')
      .map((r) => `${r.serial} from ${label(r.instance)}: ${inDb.get(r.serial)?.status ?? 'absent'}`),
    [],
    'every certificate a client received is recorded in the database as issued',
  );
  return inDb;
}

test(`faults with ${INSTANCES} instances on a PostgreSQL of the test's own`, { timeout: 300_000 }, async (t) => {
  const postgres: PostgresServer = await startPostgres({ logStatements: true });
  let cluster: Cluster;
  try {
    cluster = await startCluster(t, { instances: INSTANCES, databaseUrl: await postgres.createDatabase() });
  } finally {
    // After hooks run in the order they were registered: this one, after the cluster's (which
    // startCluster registers first thing), stops PostgreSQL once the instances have stopped;
    // destroy() copies the statement log into the run's secret scan.
    t.after(() => postgres.destroy());
  }

  await t.test(
    'kill -9 of one instance under load: every certificate a client received is in the database, no serial twice',
    async (t) => {
      const victim = 0;
      let killed = false;
      let inFlightAtKill = 0;
      const load = startLoad(cluster, { skip: (i) => killed && i === victim });
      try {
        await load.issued(20, '20 certificates before the kill');
        // Killed with requests in flight on it (a bounded wait for two); the balancer keeps sending
        // to it until it sees it gone.
        await pollUntil(
          `two requests in flight on ${label(victim)}`,
          async () => (load.inFlight[victim]! >= 2 ? true : undefined),
          { timeoutMs: 10_000, intervalMs: 1 },
        );
        inFlightAtKill = load.inFlight[victim]!;
        cluster.instances[victim]!.child.kill('SIGKILL');
        await pollUntil(
          `${label(victim)} to exit`,
          async () => (cluster.instances[victim]!.exited() ? true : undefined),
          {
            timeoutMs: 10_000,
            intervalMs: 20,
          },
        );
        killed = true;
        await load.issued(20, '20 certificates from the survivors after the kill');
      } finally {
        await load.stop();
      }
      const inDb = await assertNothingLost(cluster, load.received);
      t.diagnostic(
        `kill -9 of ${label(victim)} with ${inFlightAtKill} requests in flight on it: ${counts(load.outcomes)}; ${load.received.length} certificates received, all in the database (${inDb.size} rows)`,
      );
      assert.deepEqual(
        load.outcomes.filter((o) => o.kind === 'other'),
        [],
        'no answer but 201 from any instance (a killed one drops connections; it never answers wrong)',
      );
      assert.deepEqual(
        load.outcomes
          .filter((o) => o.kind === 'connection' && o.instance !== victim)
          .map((o) => `${label(o.instance)}: ${o.detail}`),
        [],
        'only the killed instance dropped connections',
      );
      for (const [i, s] of cluster.instances.entries())
        if (i !== victim) assert.equal(s.exited(), false, `${label(i)} survived its peer's death`);

      // Work that must happen once still happens, whoever held the CRL lock: a revocation through
      // a survivor reaches the survivors' OCSP and CRLs.
      const target = load.received.find((r) => r.instance !== victim)!;
      await assertRevocationReaches(t, cluster, target, 1, [1, 2], 'a peer was killed');

      const restarted = await cluster.restart(victim);
      const back = await sign(cluster, restarted, {
        csr: (await newCsr('back.ha.test')).csr,
        token: await adminToken(cluster, 'back.ha.test'),
      });
      issuedOf(back);
    },
  );

  await t.test(
    'PostgreSQL restarted under load: only 201s and 503 problem documents, no instance dies, each issues again within 30 s of its return',
    async (t) => {
      const load = startLoad(cluster);
      let restartedAt = 0;
      let down = false;
      const recovery: number[] = [];
      try {
        await load.issued(10, '10 certificates before the database stops');
        const stoppedAt = Date.now();
        await postgres.stop();
        down = true;
        // The outage lasts until each instance has answered two requests sent after the stop
        // (whatever they were), bounded: a request that hangs is a failure the summary shows.
        await pollUntil(
          'every instance to answer two requests while the database is down',
          async () =>
            cluster.instances.every(
              (_, i) => load.outcomes.filter((o) => o.instance === i && o.at >= stoppedAt).length >= 2,
            )
              ? true
              : undefined,
          { timeoutMs: 30_000, intervalMs: 50 },
        ).catch((err: Error) => {
          throw new Error(
            `${err.message}; outcomes since the stop: ${counts(load.outcomes.filter((o) => o.at >= stoppedAt))}`,
          );
        });
        await postgres.start();
        down = false;
        restartedAt = Date.now();
        await Promise.all(
          cluster.instances.map(async (_, i) => {
            await pollUntil(
              `${label(i)} to issue again after the database returned`,
              async () =>
                load.outcomes.some((o) => o.instance === i && o.kind === '201' && o.at >= restartedAt)
                  ? true
                  : undefined,
              { timeoutMs: RECOVERY_BOUND_MS + 30_000, intervalMs: 50 },
            );
            // The first request started after the return that got a 201: its start is when the instance was back.
            recovery[i] =
              Math.min(
                ...load.outcomes
                  .filter((o) => o.instance === i && o.kind === '201' && o.at >= restartedAt)
                  .map((o) => o.at),
              ) - restartedAt;
          }),
        );
        await load.issued(10, '10 more certificates after recovery');
      } finally {
        if (down) await postgres.start(); // the next subtest needs it, whatever failed here
        await load.stop();
      }
      const during = load.outcomes.filter((o) => o.kind !== '201');
      const logged = new Set(
        cluster.instances.flatMap((s) =>
          s
            .logs()
            .filter((l) => l.level === 'error' || l.level === 'warn')
            .map((l) => `${String(l.event)}: ${String(l.error ?? l.note ?? '').slice(0, 160)}`),
        ),
      );
      t.diagnostic(`what the instances logged (warn/error, distinct): ${[...logged].join(' | ')}`);
      const failedAt = new Set(
        cluster.instances.flatMap((s) =>
          s
            .logs()
            .filter((l) => l.event === 'request_failed' && typeof l.stack === 'string')
            .map((l) =>
              (l.stack as string)
                .split('\n')
                .map((f) => f.trim())
                // The first frames above the store: which call of the authority or a front door let it through.
                .filter((f) => f.startsWith('at ') && !/packages\/store\/|node:internal|node_modules/.test(f))
                .slice(0, 3)
                .join(' < '),
            ),
        ),
      );
      if (failedAt.size > 0) t.diagnostic(`where requests failed (500): ${[...failedAt].join(' | ')}`);
      t.diagnostic(
        `PostgreSQL restart under load: ${counts(load.outcomes)}; first 201 after the database returned: ${recovery.map((ms, i) => `${label(i)} +${ms} ms`).join(', ')}`,
      );
      assert.deepEqual(
        tally(during.filter((o) => o.kind !== '503')),
        [],
        'during the outage clients got 503 problem documents only: no 500, no other status, no dropped connection',
      );
      for (const [i, s] of cluster.instances.entries())
        assert.equal(s.exited(), false, `${label(i)} stayed alive through the outage`);
      recovery.forEach((ms, i) =>
        assert.ok(
          ms <= RECOVERY_BOUND_MS,
          `${label(i)} issued again ${ms} ms after the database returned (bound ${RECOVERY_BOUND_MS} ms)`,
        ),
      );
      await assertNothingLost(cluster, load.received);
      for (const [i, s] of cluster.instances.entries())
        assert.deepEqual(
          s.logs().filter((l) => l.level === 'error' && !/storage|database|unavailable/i.test(JSON.stringify(l))),
          [],
          `${label(i)} logged no error other than the database being unavailable`,
        );
    },
  );

  await t.test(
    'after the restart, a revocation through one instance still reaches every OCSP within 1 s and every CRL within 5 s (change notices re-established or polled)',
    async (t) => {
      const leaf = await issue(cluster, cluster.instances[2]!, 'after-restart.ha.test');
      await assertRevocationReaches(t, cluster, leaf, 0, [0, 1, 2], 'after a PostgreSQL restart');
    },
  );

  await t.test(
    'serve started while the database is down retries and says so (database_unavailable), then listens once it returns',
    async (t) => {
      await postgres.stop();
      const serve = spawnServe(cluster);
      t.after(() => serve.stop());
      const said = await pollUntil(
        'serve to log database_unavailable',
        async () => {
          if (serve.exited()) throw new Error(`serve exited while the database was down:\n${serve.stderr()}`);
          return serve.logs().find((l) => l.event === 'database_unavailable');
        },
        { timeoutMs: 30_000, intervalMs: 50 },
      );
      t.diagnostic(`while the database was down, serve said: ${JSON.stringify(said)}`);
      assert.equal(
        serve.logs().some((l) => l.event === 'listening'),
        false,
        'serve does not listen without its database',
      );
      assert.doesNotMatch(serve.stderr(), /password/i, 'what it says names no password');
      const since = Date.now();
      await postgres.start();
      const listening = await pollUntil(
        'serve to listen once the database returned',
        async () => {
          if (serve.exited()) throw new Error(`serve exited:\n${serve.stderr()}`);
          return serve.logs().find((l) => l.event === 'listening');
        },
        { timeoutMs: RECOVERY_BOUND_MS, intervalMs: 50 },
      );
      t.diagnostic(
        `serve listened ${Date.now() - since} ms after the database returned (it retries at most every 10 s)`,
      );
      const api = String(listening.api);
      issuedOf(
        await sign(
          cluster,
          { api },
          { csr: (await newCsr('late.ha.test')).csr, token: await adminToken(cluster, 'late.ha.test') },
        ),
      );
    },
  );
});

/** `shortleaf serve` on the cluster's data and database, on free ports, watched from its first line (startServer only hands a server over once it listens). */
function spawnServe(cluster: Cluster) {
  const child = track(
    process.execPath,
    shortleafArgs([
      'serve',
      '--data',
      cluster.dataDir,
      '--database',
      cluster.databaseUrl,
      '--config',
      cluster.configFile,
      '--listen',
      '127.0.0.1:0',
      '--status-listen',
      '127.0.0.1:0',
    ]),
    {},
  );
  child.stdin!.end();
  child.stdout!.resume();
  let stderr = '';
  let exited = false;
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const logs = () =>
    stderr.split('\n').flatMap((line) => {
      try {
        return line.startsWith('{') ? [JSON.parse(line) as Record<string, unknown>] : [];
      } catch {
        return [];
      }
    });
  return {
    stderr: () => stderr,
    logs,
    exited: () => exited,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(timer);
    },
  };
}
