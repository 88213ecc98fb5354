-- The provisioner type is no longer fixed by the schema: the authority's provisioner registry
-- (packages/authority/src/provisioners/registry.ts) says which types exist, so a new type
-- (Kubernetes, OIDC) needs a row there and no migration. Never edit this file once it has landed.
--
-- SQLite cannot drop a CHECK constraint, so the table is rebuilt after SQLite's procedure for
-- other schema changes (https://www.sqlite.org/lang_altertable.html#otheralter), adapted to the
-- migration runner (packages/store/src/migrate.ts):
-- * Steps 1, 2, 11, 12: the runner applies each file inside its own transaction on a connection
--   that has foreign_keys ON, where `PRAGMA foreign_keys = OFF` does nothing. Foreign keys are
--   deferred to the commit instead; `defer_foreign_keys` switches itself off at that commit.
-- * Steps 4 to 7: acme_accounts and acme_eab_keys reference provisioners (name). With foreign keys
--   on, DROP TABLE deletes every row first and counts each referencing row as a violation, which
--   only putting the parent row back into a table of that name cancels; renaming a new_provisioners
--   table into place would not, and the commit would fail. So the rows are kept aside, the table is
--   dropped and created again under its own name (the references in other tables, which name it,
--   stay as they are), and the rows go back in.
-- * Step 10: with foreign keys deferred, the commit itself refuses the migration if any row in
--   another table lost the provisioner it references; nothing is left half-done.
-- * Steps 3, 8, 9: provisioners has no index (besides its primary key), trigger or view.
PRAGMA defer_foreign_keys = ON;

CREATE TABLE provisioners_before_0007 AS SELECT name, type, public_jwk, policy, created_at, options FROM provisioners;

DROP TABLE provisioners;

CREATE TABLE provisioners (
  name       TEXT PRIMARY KEY,
  type       TEXT NOT NULL CHECK (type <> ''), -- which types exist is the registry's to say
  public_jwk TEXT,
  policy     TEXT NOT NULL, -- JSON, interpreted by the authority
  created_at TEXT NOT NULL,
  options    TEXT NOT NULL DEFAULT '{}' -- JSON, interpreted by the provisioner's type
);

INSERT INTO provisioners (name, type, public_jwk, policy, created_at, options)
  SELECT name, type, public_jwk, policy, created_at, options FROM provisioners_before_0007;

DROP TABLE provisioners_before_0007;
