-- Revocation on PostgreSQL: what was revoked (with the change cursor), blocked keys, the CRLs we
-- published, the root CRLs we were given, and the root-delegated OCSP signers. The final shape of
-- SQLite's migrations 0002, 0005 (blocked_keys) and 0006 (revision), with the same table and column
-- names, so `store copy` moves SQLite rows over column by column: ISO text casts to timestamptz,
-- blobs to bytea. Never edit once landed.

-- One row per revoked certificate; the first revocation wins, except that keyCompromise may
-- replace an earlier reason (the time stays). `revision` is the change cursor a server polls
-- (`changes`): every insert, and every reason replaced, sets it to the largest plus one while the
-- revoking transaction holds `LOCK TABLE revocations IN SHARE ROW EXCLUSIVE MODE` (see
-- packages/store/src/postgres/pg-revocation-repository.ts). That lock conflicts with itself and
-- with every other writer of this table and is held until commit, so revisions are handed out in
-- commit order: a reader can never see revision n+1 while n is still invisible, which a sequence
-- (drawn before commit) would allow. No counter to keep in step: rows copied from SQLite keep
-- their revisions and the next one follows them.
CREATE TABLE revocations (
  serial     text PRIMARY KEY REFERENCES certificates (serial),
  revoked_at timestamptz NOT NULL,
  reason     text NOT NULL,
  actor      text NOT NULL,
  revision   bigint NOT NULL CHECK (revision > 0)
);

CREATE UNIQUE INDEX revocations_by_revision ON revocations (revision);

-- Keys revoked for keyCompromise (Boulder's blockedKeys): refused for any later issuance or
-- renewal, whatever the front door.
CREATE TABLE blocked_keys (
  spki_sha256 text PRIMARY KEY,
  reason      text NOT NULL,
  serial      text REFERENCES certificates (serial), -- the revocation that blocked it
  blocked_at  timestamptz NOT NULL
);

-- Every CRL an intermediate published. The primary key makes a number usable once across every
-- instance on the database; the builder takes the largest plus one, so numbers only grow (RFC
-- 5280 §5.2.3).
CREATE TABLE crls (
  issuer_id   text NOT NULL REFERENCES issuers (id),
  number      bigint NOT NULL CHECK (number >= 0),
  this_update timestamptz NOT NULL,
  next_update timestamptz NOT NULL,
  entries     integer NOT NULL,
  der         bytea NOT NULL,
  PRIMARY KEY (issuer_id, number)
);

-- CRLs signed offline by a root and imported; served at /root.crl.
CREATE TABLE root_crls (
  root_fingerprint text NOT NULL REFERENCES roots (fingerprint),
  number           bigint NOT NULL CHECK (number >= 0),
  this_update      timestamptz NOT NULL,
  next_update      timestamptz NOT NULL,
  der              bytea NOT NULL,
  imported_at      timestamptz NOT NULL,
  PRIMARY KEY (root_fingerprint, number)
);

-- OCSP signers the root delegated at the offline ceremony, to answer for an intermediate's own
-- status. The key is generated here and sealed; the certificate arrives with the intermediate.
-- `seq` (not in SQLite, filled on insert) breaks ties between signers created at the same instant:
-- the later one is the newer.
CREATE TABLE ocsp_signers (
  id         text PRIMARY KEY,
  issuer_id  text NOT NULL REFERENCES issuers (id),
  sealed_key bytea NOT NULL,
  csr_der    bytea NOT NULL,
  cert_der   bytea,
  created_at timestamptz NOT NULL,
  seq        bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);

CREATE INDEX ocsp_signers_issuer ON ocsp_signers (issuer_id, created_at);
