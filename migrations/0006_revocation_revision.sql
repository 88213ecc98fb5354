-- An engine-neutral change cursor for revocations. A server notices revocations that other
-- processes (the CLI, another instance) wrote by asking for those with a revision above the last
-- one it saw. Until now that was SQLite's rowid, which no other engine has. Every insert, and
-- every keyCompromise replacing an earlier reason, sets the revision to the largest plus one under
-- the write lock, so a change is always seen after everything recorded before it. Never edit once landed.
ALTER TABLE revocations ADD COLUMN revision INTEGER;

-- Existing rows keep the order their rowid gave them.
UPDATE revocations SET revision = rowid;

CREATE UNIQUE INDEX revocations_by_revision ON revocations (revision);
