import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { UsageError } from './cli.js';
import { ConfigError, loadConfig } from './config.js';
import { describeLocation, storeLocation } from './data.js';

const FLAG = 'postgres://flag@db-flag/ca';
const ENV = 'postgres://env@db-env/ca';
const CONFIG = 'postgresql://config@db-config/ca';

describe('storeLocation', () => {
  const saved = process.env.SHORTLEAF_DATABASE_URL;
  afterEach(() => {
    if (saved === undefined) delete process.env.SHORTLEAF_DATABASE_URL;
    else process.env.SHORTLEAF_DATABASE_URL = saved;
  });

  it('is SQLite in --data without a URL, and needs --data then', () => {
    delete process.env.SHORTLEAF_DATABASE_URL;
    assert.deepEqual(storeLocation({ data: 'd' }), { engine: 'sqlite', dataDir: 'd' });
    assert.deepEqual(storeLocation({}, { defaultDataDir: './data' }), { engine: 'sqlite', dataDir: './data' });
    assert.throws(
      () => storeLocation({}),
      (err: unknown) => err instanceof UsageError && /--data DIR/.test(err.message),
    );
  });

  it('takes the URL from --database, else SHORTLEAF_DATABASE_URL, else the config key', () => {
    process.env.SHORTLEAF_DATABASE_URL = ENV;
    assert.deepEqual(storeLocation({ database: FLAG }, { configUrl: CONFIG }), { engine: 'postgres', url: FLAG });
    assert.deepEqual(storeLocation({ data: 'd' }, { configUrl: CONFIG }), {
      engine: 'postgres',
      url: ENV,
      dataDir: 'd',
    });
    delete process.env.SHORTLEAF_DATABASE_URL;
    assert.deepEqual(storeLocation({}, { configUrl: CONFIG }), { engine: 'postgres', url: CONFIG });
    assert.deepEqual(storeLocation({ data: 'd' }, { configUrl: null }), { engine: 'sqlite', dataDir: 'd' });
  });

  it('refuses a URL that is not PostgreSQL, naming where it came from and not its password', () => {
    process.env.SHORTLEAF_DATABASE_URL = 'mysql://u:s3cret-pass@db/ca';
    assert.throws(
      () => storeLocation({ data: 'd' }),
      (err: unknown) =>
        err instanceof UsageError &&
        /^SHORTLEAF_DATABASE_URL must be/.test(err.message) &&
        !err.message.includes('s3cret'),
    );
    assert.throws(() => storeLocation({ database: 'db:5432' }), /^UsageError: --database must be/);
  });

  it('describes a location without the password', () => {
    assert.equal(
      describeLocation({ engine: 'postgres', url: 'postgres://ca:s3cret-pass@db:5432/ca' }),
      'PostgreSQL postgres://ca:***@db:5432/ca',
    );
    assert.equal(describeLocation({ engine: 'sqlite', dataDir: '/srv/ca' }), '/srv/ca');
  });
});

describe('database.url in the config file', () => {
  it('loads a PostgreSQL URL and refuses anything else', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'shortleaf-config-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ database: { url: CONFIG } }));
    assert.equal(loadConfig(file, {}).database.url, CONFIG);
    assert.equal(loadConfig(undefined, {}).database.url, null);
    writeFileSync(file, JSON.stringify({ database: { url: 'sqlite:///srv/ca.db' } }));
    assert.throws(
      () => loadConfig(file, {}),
      (err: unknown) => err instanceof ConfigError && /^database\.url must be a postgres/.test(err.message),
    );
  });
});
