import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readTokenFile, tokenFileStamp } from './token-file.js';

describe('token file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shortleaf-token-file-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const secret = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YTpiIn0.c2ln';

  it('reads the token trimmed of the whitespace around it, afresh at every call', () => {
    const file = join(dir, 'token');
    writeFileSync(file, `  ${secret}\n`);
    assert.deepEqual(readTokenFile(file), { token: secret });
    writeFileSync(file, 'rotated');
    assert.deepEqual(readTokenFile(file), { token: 'rotated' }, 'no cached reading');
  });

  it('says why there is no token, naming the file and never its content', () => {
    const missing = join(dir, 'missing');
    assert.deepEqual(readTokenFile(missing), { error: `cannot read the token file ${missing}: it does not exist` });
    const empty = join(dir, 'empty');
    writeFileSync(empty, ' \n\t\n');
    assert.deepEqual(readTokenFile(empty), { error: `the token file ${empty} is empty` });
    const folder = join(dir, 'folder');
    mkdirSync(folder);
    assert.deepEqual(readTokenFile(folder), { error: `cannot read the token file ${folder}: it is a directory` });
  });

  it('stamps a file so that a replacement (a rename over it, as a kubelet or tooling does) is seen', () => {
    const file = join(dir, 'stamped');
    assert.equal(tokenFileStamp(file), 'missing');
    writeFileSync(file, secret);
    const first = tokenFileStamp(file);
    assert.notEqual(first, 'missing');
    assert.equal(tokenFileStamp(file), first, 'unchanged while nobody touches it');
    writeFileSync(`${file}.new`, secret);
    renameSync(`${file}.new`, file);
    assert.notEqual(tokenFileStamp(file), first, 'same content, new file: a new stamp');
  });
});
