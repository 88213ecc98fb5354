import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { createValidator } from './index.js';
import {
  assertAcmeError,
  challengeFor,
  freePort,
  startChallTestSrv,
  testConfig,
  type ChallTestSrv,
} from './test-fixtures.js';

const digest = (keyAuthorization: string) => createHash('sha256').update(keyAuthorization).digest('base64url');

describe('dns-01', () => {
  let dnsServer: ChallTestSrv;
  before(async () => {
    dnsServer = await startChallTestSrv();
  });
  after(async () => {
    await dnsServer.stop();
  });

  const validator = () => createValidator(testConfig({ dnsResolver: dnsServer.resolver }));

  test('a TXT record holding base64url(SHA-256(key authorization)) is valid, beside other records', async () => {
    const challenge = challengeFor('dns-01', 'svc1.test');
    await dnsServer.manage('/set-txt', { host: '_acme-challenge.svc1.test.', value: 'left over from last month' });
    await dnsServer.manage('/set-txt', {
      host: '_acme-challenge.svc1.test.',
      value: digest(challenge.keyAuthorization),
    });
    try {
      await validator()(challenge);
    } finally {
      await dnsServer.manage('/clear-txt', { host: '_acme-challenge.svc1.test.' });
    }
  });

  test('a record with the wrong value is incorrectResponse, giving the expected value and never the one found', async () => {
    const challenge = challengeFor('dns-01', 'svc1.test');
    await dnsServer.manage('/set-txt', { host: '_acme-challenge.svc1.test.', value: digest('someone else') });
    try {
      const error = await assertAcmeError(
        validator()(challenge),
        'incorrectResponse',
        '_acme-challenge.svc1.test',
        digest(challenge.keyAuthorization),
        '1 found',
      );
      assert.ok(!error.message.includes(digest('someone else')), error.message);
    } finally {
      await dnsServer.manage('/clear-txt', { host: '_acme-challenge.svc1.test.' });
    }
  });

  test('no TXT record at all is dns', async () => {
    const challenge = challengeFor('dns-01', 'svc1.test');
    await assertAcmeError(validator()(challenge), 'dns', 'no TXT record found at _acme-challenge.svc1.test');
  });

  test('SERVFAIL is dns', async () => {
    await dnsServer.manage('/set-servfail', { host: '_acme-challenge.broken.test.' });
    const challenge = challengeFor('dns-01', 'broken.test');
    await assertAcmeError(validator()(challenge), 'dns', 'TXT query for _acme-challenge.broken.test', 'SERVFAIL');
  });

  test('a resolver that cannot be reached is dns', async () => {
    const closed = `127.0.0.1:${await freePort()}`;
    const challenge = challengeFor('dns-01', 'svc1.test');
    await assertAcmeError(
      createValidator(testConfig({ dnsResolver: closed, timeoutMs: 1_000 }))(challenge),
      'dns',
      '_acme-challenge.svc1.test',
      closed,
    );
  });

  test('a resolver that never answers is dns once timeoutMs has passed', async () => {
    const silent = createSocket('udp4');
    silent.on('message', () => {});
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', () => resolve()));
    try {
      const resolver = `127.0.0.1:${silent.address().port}`;
      const challenge = challengeFor('dns-01', 'svc1.test');
      const started = Date.now();
      await assertAcmeError(
        createValidator(testConfig({ dnsResolver: resolver, timeoutMs: 600 }))(challenge),
        'dns',
        '_acme-challenge.svc1.test',
        resolver,
      );
      const elapsed = Date.now() - started;
      assert.ok(elapsed < 1_500, `took ${elapsed} ms`);
    } finally {
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  test('an IP identifier cannot use dns-01', async () => {
    const challenge = challengeFor('dns-01', '127.0.0.1', 'ip');
    await assertAcmeError(validator()(challenge), 'malformed', 'dns-01 cannot validate the IP address 127.0.0.1');
  });

  test('a wildcard arrives as its base name; a name still carrying "*." is malformed', async () => {
    const challenge = challengeFor('dns-01', '*.svc1.test');
    await assertAcmeError(validator()(challenge), 'malformed', '*.svc1.test', 'base name');
  });
});
