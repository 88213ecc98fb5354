import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from './logger.js';
import { currentRequestId, requestIdFor, runWithRequestId, withRequestIds } from './request-context.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function capture() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return {
    stream,
    lines: () =>
      text
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('requestIdFor', () => {
  it('keeps a sane incoming id: up to 64 of [A-Za-z0-9._-]', () => {
    for (const id of ['abc', 'A-b_c.9', 'x'.repeat(64), '0f8fad5b-d9cb-469f-a165-70867728950e'])
      assert.equal(requestIdFor(id), id);
  });

  it('replaces anything else with a fresh UUID', () => {
    for (const bad of [
      undefined,
      '',
      'x'.repeat(65),
      'has space',
      'quote"',
      'new\nline',
      'ünïcode',
      '{"json":1}',
      ['a', 'b'],
    ]) {
      const id = requestIdFor(bad);
      assert.match(id, UUID, `${JSON.stringify(bad)} → ${id}`);
    }
    assert.notEqual(requestIdFor(undefined), requestIdFor(undefined));
  });
});

describe('the logger and the request context', () => {
  it('adds requestId to lines written inside a request, across awaits, and not outside', async () => {
    const out = capture();
    const logger = createLogger('info', out.stream);
    logger.info('before');
    await runWithRequestId('req-1', async () => {
      logger.info('start', { a: 1 });
      await new Promise((r) => setTimeout(r, 1));
      assert.equal(currentRequestId(), 'req-1');
      logger.error('later');
    });
    logger.warn('after');
    const lines = out.lines();
    assert.deepEqual(
      lines.map((l) => [l.event, l.requestId]),
      [
        ['before', undefined],
        ['start', 'req-1'],
        ['later', 'req-1'],
        ['after', undefined],
      ],
    );
    assert.equal(lines[1]!.a, 1);
    assert.equal(lines[1]!.level, 'info');
  });

  it('keeps two concurrent requests apart', async () => {
    const out = capture();
    const logger = createLogger('info', out.stream);
    const one = (id: string, ms: number) =>
      runWithRequestId(id, async () => {
        await new Promise((r) => setTimeout(r, ms));
        logger.info('done', { id });
      });
    await Promise.all([one('slow', 20), one('fast', 1)]);
    for (const l of out.lines()) assert.equal(l.requestId, l.id);
  });

  it('respects the level', () => {
    const out = capture();
    createLogger('warn', out.stream).info('quiet');
    assert.deepEqual(out.lines(), []);
  });
});

describe('withRequestIds', () => {
  async function serve(handler: Parameters<typeof withRequestIds>[1]) {
    const out = capture();
    const logger = createLogger('info', out.stream);
    const server = createServer(withRequestIds(logger, (req, res) => handler(req, res)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const get = (path: string, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; id: string | undefined }>((resolve, reject) => {
        request({ port, host: '127.0.0.1', path, headers }, (res) => {
          res.resume();
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, id: res.headers['x-request-id'] as string | undefined }),
          );
        })
          .on('error', reject)
          .end();
      });
    return { logger, out, get, close: () => new Promise((r) => server.close(r)) };
  }

  it('answers with the id, logs it on the handler’s lines and on one http_request line (path without query)', async () => {
    let logger: ReturnType<typeof createLogger> | undefined;
    const s = await serve((_req, res) => {
      setTimeout(() => {
        logger!.info('handled');
        res.writeHead(201, { 'content-type': 'text/plain' }).end('ok');
      }, 1);
    });
    logger = s.logger;
    try {
      const kept = await s.get('/api/v1/sign?token=secret', { 'x-request-id': 'client.7' });
      assert.deepEqual(kept, { status: 201, id: 'client.7' });
      const made = await s.get('/health', { 'x-request-id': 'bad id' });
      assert.match(made.id ?? '', UUID);
      await new Promise((r) => setTimeout(r, 20));
      const lines = s.out.lines();
      const handled = lines.filter((l) => l.event === 'handled').map((l) => l.requestId);
      assert.deepEqual(handled, ['client.7', made.id]);
      const access = lines.filter((l) => l.event === 'http_request');
      assert.equal(access.length, 2);
      assert.deepEqual(
        { ...access[0], time: undefined, ms: undefined },
        {
          time: undefined,
          level: 'info',
          event: 'http_request',
          requestId: 'client.7',
          method: 'GET',
          path: '/api/v1/sign',
          status: 201,
          ms: undefined,
        },
      );
      assert.equal(typeof access[0]!.ms, 'number');
      assert.ok(!JSON.stringify(lines).includes('secret'), 'the query string is never logged');
    } finally {
      await s.close();
    }
  });
});
