import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { DEFAULT_VALIDATION_LIMITS } from './validation-runner.js';
import {
  createAcmeHarness,
  expectProblem,
  type AcmeClient,
  type AcmeHarness,
  type AuthorizationBody,
  type ChallengeBody,
  type OrderBody,
} from './test-fixtures.js';

/**
 * A listener that accepts and never answers, on 127.0.0.2 at the port http-01 dials: every
 * validation sent to it hangs until its timeout, as one against a hostile host does.
 */
async function silentListener(port: number): Promise<{ accepted(): number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.2', () => resolve()));
  return {
    accepted: () => accepted,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const hangingNames = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}.hang.test`);

/** Polls `check` every 20 ms until it holds, for at most `ms` (a bound, not a wait). */
async function until(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(20)) if (await check()) return;
  assert.fail(`${what} did not happen within ${ms} ms`);
}

/** The http-01 challenge of each authorization of `order`, with its URL. */
async function http01s(
  client: AcmeClient,
  order: OrderBody,
): Promise<Array<{ authz: string; challenge: ChallengeBody }>> {
  const out = [];
  for (const authz of order.authorizations) {
    const body = (await client.get<AuthorizationBody>(authz)).body;
    out.push({ authz, challenge: body.challenges.find((c) => c.type === 'http-01')! });
  }
  return out;
}

/** Asks for validation of every challenge, giving each reply in order. */
async function answerAll(client: AcmeClient, challenges: Array<{ challenge: ChallengeBody }>) {
  const replies = [];
  for (const { challenge } of challenges) replies.push(await client.post<ChallengeBody>(challenge.url, {}));
  return replies;
}

async function harnessWith(
  names: string[],
  timeoutMs: number,
  validationLimits: Partial<typeof DEFAULT_VALIDATION_LIMITS>,
): Promise<{ h: AcmeHarness; silent: Awaited<ReturnType<typeof silentListener>> }> {
  const h = await createAcmeHarness({
    hosts: Object.fromEntries(names.map((n) => [n, '127.0.0.2'])),
    timeoutMs,
    validationLimits,
  });
  return { h, silent: await silentListener(h.httpPort) };
}

describe('validation runner: bounds and fairness', () => {
  it('defaults: 16 at once, 4 per account, 100 pending per account (one full order), 1000 per provisioner', () => {
    assert.deepEqual(DEFAULT_VALIDATION_LIMITS, {
      concurrency: 16,
      concurrencyPerAccount: 4,
      maxPendingPerAccount: 100,
      maxPendingPerProvisioner: 1_000,
    });
  });

  it("refuses an account's validation past its pending bound with rateLimited, and another account's correct challenge completes while the first account's hang", async () => {
    const names = hangingNames('a', 21);
    // Main's limits (16 at once) and a bound above them: without a per-account share, these 20
    // hanging validations would hold every slot and the honest one would wait behind them.
    const { h, silent } = await harnessWith(names, 60_000, {
      concurrency: 16,
      concurrencyPerAccount: 4,
      maxPendingPerAccount: 20,
    });
    try {
      const hostile = await h.account();
      const order = await hostile.newOrder(names);
      assert.equal(order.status, 201, order.text);
      const challenges = await http01s(hostile, order.body);
      const replies = await answerAll(hostile, challenges);
      for (const reply of replies.slice(0, 20)) assert.equal(reply.body.status, 'processing', reply.text);
      const refused = expectProblem(
        replies[20]!,
        429,
        'rateLimited',
        'the limit is 20 (acme.validation.maxPendingPerAccount)',
      );
      assert.ok(refused.detail.includes('20 challenge validations pending'), refused.detail);
      assert.equal(replies[20]!.headers.get('retry-after'), '10');
      // Refused up front: the challenge is still pending and can be answered later.
      assert.equal((await hostile.get<ChallengeBody>(challenges[20]!.challenge.url)).body.status, 'pending');

      await until(() => silent.accepted() === 4, 'four of the hostile validations connecting');

      const honest = await h.account();
      const { order: ready } = await honest.readyOrder(['svc1.test']);
      assert.equal(ready.status, 'ready');

      // The hostile account's validations are all still hanging, and never more than 4 ran at once.
      for (const { authz } of challenges.slice(0, 20)) {
        const body = (await hostile.get<AuthorizationBody>(authz)).body;
        assert.equal(body.status, 'pending');
        assert.equal(body.challenges.find((c) => c.type === 'http-01')!.status, 'processing');
      }
      assert.equal(silent.accepted(), 4);
    } finally {
      await silent.close();
      await h.close();
    }
  });

  it('bounds the validations pending for all accounts of one provisioner, and only that provisioner', async () => {
    const names = hangingNames('p', 3);
    const { h, silent } = await harnessWith(names, 60_000, {
      concurrency: 4,
      concurrencyPerAccount: 1,
      maxPendingPerAccount: 3,
      maxPendingPerProvisioner: 5,
    });
    try {
      await h.addProvisioner('other');
      const first = await h.account();
      const second = await h.account();
      const elsewhere = await h.account('other');
      const replies = [];
      for (const client of [first, second, elsewhere]) {
        const order = await client.newOrder(names);
        assert.equal(order.status, 201, order.text);
        replies.push(await answerAll(client, await http01s(client, order.body)));
      }
      assert.deepEqual(
        replies[0]!.map((r) => r.status),
        [200, 200, 200],
      );
      assert.deepEqual(
        replies[1]!.map((r) => r.status),
        [200, 200, 429],
      );
      expectProblem(
        replies[1]![2]!,
        429,
        'rateLimited',
        'the provisioner acme has 5 challenge validations pending; the limit is 5 (acme.validation.maxPendingPerProvisioner)',
      );
      assert.deepEqual(
        replies[2]!.map((r) => r.status),
        [200, 200, 200],
      );
    } finally {
      await silent.close();
      await h.close();
    }
  });

  it("gives a freed slot to the next account in turn, not to the first account's backlog", async () => {
    const names = hangingNames('r', 24);
    // No per-account share here (16 of 16), so only the turn order can let the honest account in:
    // 16 hostile validations hold every slot and 8 more wait when the honest one arrives.
    const { h, silent } = await harnessWith(names, 1_000, {
      concurrency: 16,
      concurrencyPerAccount: 16,
      maxPendingPerAccount: 24,
    });
    try {
      const hostile = await h.account();
      const order = await hostile.newOrder(names);
      const challenges = await http01s(hostile, order.body);
      assert.ok((await answerAll(hostile, challenges)).every((r) => r.status === 200));
      await until(() => silent.accepted() === 16, 'sixteen hostile validations connecting');

      const honest = await h.account();
      const created = await honest.newOrder(['svc2.test']);
      const [{ authz, challenge }] = (await http01s(honest, created.body)) as [
        { authz: string; challenge: ChallengeBody },
      ];
      // When the challenge server is asked for the honest token, how many hostile validations had started?
      let startedBefore = -1;
      const get = h.responses.get.bind(h.responses);
      h.responses.get = (token) => {
        if (token === challenge.token) startedBefore = silent.accepted();
        return get(token);
      };
      h.responses.set(challenge.token, await honest.keyAuthorization(challenge.token));
      assert.equal((await honest.post<ChallengeBody>(challenge.url, {})).status, 200);
      await until(
        async () => (await honest.get<AuthorizationBody>(authz)).body.status === 'valid',
        'the honest validation',
      );
      // In turn, the honest validation takes one of the first slots freed; first come, first
      // served, it would wait until all 8 queued hostile validations had started.
      assert.ok(
        startedBefore >= 16 && startedBefore < 24,
        `${startedBefore} hostile validations had started before the honest one`,
      );
    } finally {
      await silent.close();
      await h.close();
    }
  });

  it('the error a client reads after a redirect into an internal service carries nothing it sent; the log says where it led', async () => {
    const h = await createAcmeHarness({
      hosts: { 'public.hang.test': '127.0.0.2', 'internal.hang.test': '127.0.0.3' },
    });
    const listenOn = async (server: Server, host: string) =>
      new Promise<void>((resolve, reject) => server.once('error', reject).listen(h.httpPort, host, () => resolve()));
    const site = createHttpServer((_req, res) =>
      res.writeHead(302, { location: `http://internal.hang.test:${h.httpPort}/admin/secret-path` }).end(),
    );
    const internal = createHttpServer((_req, res) =>
      res.writeHead(200, { 'x-internal': 'secret-header' }).end('secret-body {"token":"hunter2"}'),
    );
    await listenOn(site, '127.0.0.2');
    await listenOn(internal, '127.0.0.3');
    try {
      const client = await h.account();
      const order = await client.newOrder(['public.hang.test']);
      const [{ authz, challenge }] = (await http01s(client, order.body)) as [
        { authz: string; challenge: ChallengeBody },
      ];
      assert.equal((await client.post<ChallengeBody>(challenge.url, {})).status, 200);
      await until(
        async () => (await client.get<AuthorizationBody>(authz)).body.status === 'invalid',
        'the validation failing',
      );
      const read = (await client.get<ChallengeBody>(challenge.url)).body;
      assert.equal(read.error?.type, 'urn:ietf:params:acme:error:incorrectResponse');
      assert.ok(
        read.error.detail.startsWith('the body at the URL of redirect 1 from http://public.hang.test'),
        read.error.detail,
      );
      assert.ok(!/secret|hunter2|internal|127\.0\.0\.3/.test(JSON.stringify(read)), JSON.stringify(read));
      const logged = h.ca.logger.lines.find(
        (l) => l.event === 'acme_validation' && l.fields.identifier === 'public.hang.test',
      );
      assert.equal(logged?.fields.problem, 'urn:ietf:params:acme:error:incorrectResponse');
      assert.equal(
        logged.fields.detail,
        `the last redirect led to http://internal.hang.test:${h.httpPort}/admin/secret-path`,
      );
      assert.ok(!h.ca.logger.text().includes('hunter2'), 'the body is not logged either');
    } finally {
      await new Promise<void>((resolve) => site.close(() => resolve()));
      await new Promise<void>((resolve) => internal.close(() => resolve()));
      await h.close();
    }
  });
});
