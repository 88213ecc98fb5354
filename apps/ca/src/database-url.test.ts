import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { databaseUrlProblem, redactDatabaseUrl, redactUrlsIn } from './database-url.js';

describe('database URLs', () => {
  it('accepts postgres:// and postgresql://, naming the source of anything else', () => {
    assert.equal(databaseUrlProblem('postgres://ca@db.internal:5432/shortleaf', '--database'), null);
    assert.equal(databaseUrlProblem('postgresql://ca:s3cret@127.0.0.1/shortleaf?sslmode=require', 'x'), null);
    assert.match(databaseUrlProblem('mysql://ca:s3cret@db/x', '--database')!, /^--database must be a postgres/);
    assert.match(databaseUrlProblem('db.internal:5432', 'database.url')!, /^database.url must be/);
    assert.match(databaseUrlProblem('not a url', 'SHORTLEAF_DATABASE_URL')!, /SHORTLEAF_DATABASE_URL/);
    assert.doesNotMatch(databaseUrlProblem('mysql://ca:s3cret@db/x', '--database')!, /s3cret/);
  });

  it('redacts the password of one URL, in the userinfo or a query parameter, and keeps the rest', () => {
    assert.equal(
      redactDatabaseUrl('postgres://ca:s3cr%40t@db.internal:5432/shortleaf'),
      'postgres://ca:***@db.internal:5432/shortleaf',
    );
    assert.equal(redactDatabaseUrl('postgres://ca@db/shortleaf'), 'postgres://ca@db/shortleaf');
    assert.equal(
      redactDatabaseUrl('postgresql://db/shortleaf?user=ca&password=s3cret&sslmode=require'),
      'postgresql://db/shortleaf?user=ca&password=***&sslmode=require',
    );
  });

  it('redacts passwords of URLs inside free text', () => {
    const text = 'connect postgres://ca:s3cr@t@db.internal:5432/x failed; also postgresql://u:p%2Fq@h/y?password=zz';
    const redacted = redactUrlsIn(text);
    assert.equal(
      redacted,
      'connect postgres://ca:***@db.internal:5432/x failed; also postgresql://u:***@h/y?password=***',
    );
    assert.equal(redactUrlsIn('user@example.com said http://host/x'), 'user@example.com said http://host/x');
  });
});
