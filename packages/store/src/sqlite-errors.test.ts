import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { StoreError } from './errors.js';
import { isUniqueViolation, toStorageError } from './sqlite-errors.js';

const sqliteError = (code: string): Error => new Database.SqliteError(`simulated ${code}`, code);

describe('toStorageError', () => {
  const unavailable = [
    'SQLITE_FULL',
    'SQLITE_READONLY',
    'SQLITE_READONLY_DBMOVED',
    'SQLITE_IOERR_FSYNC',
    'SQLITE_BUSY',
    'SQLITE_BUSY_SNAPSHOT',
    'SQLITE_CANTOPEN',
  ];
  for (const code of unavailable) {
    it(`maps ${code} to storageUnavailable with the original as cause`, () => {
      const original = sqliteError(code);
      const mapped = toStorageError(original);
      assert.ok(mapped instanceof StoreError);
      assert.equal(mapped.code, 'storageUnavailable');
      assert.match(mapped.message, new RegExp(code));
      assert.equal(mapped.cause, original);
    });
  }

  for (const err of [
    sqliteError('SQLITE_CONSTRAINT_UNIQUE'),
    sqliteError('SQLITE_ERROR'),
    sqliteError('SQLITE_FULLNESS'),
    new TypeError('bug'),
  ]) {
    it(`leaves ${(err as { code?: string }).code ?? err.name} alone`, () => {
      assert.equal(toStorageError(err), err);
    });
  }

  it('recognises unique and primary key violations only', () => {
    assert.ok(isUniqueViolation(sqliteError('SQLITE_CONSTRAINT_UNIQUE')));
    assert.ok(isUniqueViolation(sqliteError('SQLITE_CONSTRAINT_PRIMARYKEY')));
    assert.ok(!isUniqueViolation(sqliteError('SQLITE_CONSTRAINT_CHECK')));
  });
});
