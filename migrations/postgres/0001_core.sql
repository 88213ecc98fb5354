-- Shortleaf's PostgreSQL schema, part 1: issuers, roots, provisioners, certificates, spent tokens,
-- the audit log and settings. Never edit this file once it has landed: change the schema with a
-- new numbered file.
--
-- Layout: migrations/ holds the SQLite engine's files, migrations/postgres/ the PostgreSQL
-- engine's. The two are numbered independently (PostgreSQL starts from SQLite's final state, not
-- its history), and each engine records what it applied in its own `schema_migrations` table, so
-- a version number means something only within its engine's folder.
--
-- Tables and columns carry SQLite's names, so `shortleaf store copy` moves a SQLite row into the
-- same table column by column. The types are chosen so that a SQLite value passed as a parameter
-- casts implicitly: ISO-8601 text to timestamptz, 0/1 to boolean, BLOB to bytea; JSON stays text
-- (the store does not interpret it). Constraints are those of SQLite's final schema (after
-- migrations 0001 to 0008). Where SQLite orders by its rowid ("insertion order"), a `seq` identity
-- column stands in for it: a copy inserts SQLite's rows in rowid order and they keep that order.
--
-- Text the store sorts by (ids, names, fingerprints) is sorted with COLLATE "C" in the queries,
-- so the order is SQLite's byte order whatever the database's locale.

-- Intermediate (issuing) keys. The private key is sealed (packages/store/src/seal.ts); the
-- certificate arrives later, once the offline root has signed the CSR.
CREATE TABLE issuers (
  id            text PRIMARY KEY,
  name          text NOT NULL UNIQUE,
  sealed_key    bytea NOT NULL,
  key_algorithm text NOT NULL,
  csr_der       bytea NOT NULL,
  cert_der      bytea,
  created_at    timestamptz NOT NULL,
  activated_at  timestamptz,
  active        boolean NOT NULL DEFAULT false
);

-- At most one issuer signs at a time.
CREATE UNIQUE INDEX issuers_one_active ON issuers (active) WHERE active;

-- Trust anchors we publish. Public certificates only: the root private key never enters the server.
CREATE TABLE roots (
  fingerprint text PRIMARY KEY, -- SHA-256 of cert_der, lowercase hex
  cert_der    bytea NOT NULL,
  added_at    timestamptz NOT NULL
);

CREATE TABLE provisioners (
  name       text PRIMARY KEY,
  type       text NOT NULL CHECK (type <> ''), -- which types exist is the authority's registry's to say
  public_jwk text,
  policy     text NOT NULL, -- JSON, interpreted by the authority
  created_at timestamptz NOT NULL,
  options    text NOT NULL DEFAULT '{}' -- JSON, interpreted by the provisioner's type
);

-- Every certificate is first reserved (serial, intent and the TBSCertificate recorded, der NULL),
-- then completed with the signed DER. The primary key is what guarantees a serial is never reused.
-- lineage and lineage_started_at are nullable as in SQLite (where they were added by ALTER TABLE);
-- the store always writes them.
CREATE TABLE certificates (
  serial             text PRIMARY KEY,
  issuer_id          text NOT NULL REFERENCES issuers (id),
  subject            text NOT NULL,
  names              text NOT NULL, -- JSON array of strings
  not_before         timestamptz NOT NULL,
  not_after          timestamptz NOT NULL,
  der                bytea,
  provisioner        text NOT NULL,
  requester          text NOT NULL,
  status             text NOT NULL CHECK (status IN ('reserved', 'issued')),
  created_at         timestamptz NOT NULL,
  issued_at          timestamptz,
  renewed_from       text REFERENCES certificates (serial),
  lineage            text,
  lineage_started_at timestamptz,
  spki_sha256        text, -- SHA-256 of the canonical DER SubjectPublicKeyInfo, lowercase hex
  tbs_der            bytea,
  seq                bigint GENERATED ALWAYS AS IDENTITY UNIQUE -- insertion order (SQLite: rowid)
);

CREATE INDEX certificates_not_after ON certificates (not_after);
-- A retired intermediate stays in service until the last certificate it issued expires.
CREATE INDEX certificates_issuer_not_after ON certificates (issuer_id, not_after);
-- "Every certificate of this lineage" and "every certificate with this key" are indexed lookups.
CREATE INDEX certificates_lineage ON certificates (lineage, not_after);
CREATE INDEX certificates_spki ON certificates (spki_sha256, not_after);
-- Listing in reservation order.
CREATE INDEX certificates_created ON certificates (created_at, seq);

-- One-time tokens already spent, kept until they would have expired anyway. The primary key is
-- what makes a token spendable once across every instance.
CREATE TABLE token_uses (
  provisioner text NOT NULL,
  jti         text NOT NULL,
  expires_at  timestamptz NOT NULL,
  PRIMARY KEY (provisioner, jti)
);

-- Pruning by expiry runs while issuance writes here; keep it off a full scan.
CREATE INDEX token_uses_expires_at ON token_uses (expires_at);

-- BY DEFAULT rather than ALWAYS so a copy keeps SQLite's ids; the copy then moves the identity
-- past the largest (setval), or the next append would collide.
CREATE TABLE audit_log (
  id     bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  at     timestamptz NOT NULL,
  action text NOT NULL,
  actor  text NOT NULL,
  serial text,
  detail text NOT NULL DEFAULT '{}' -- JSON object
);

CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE settings (
  key   text PRIMARY KEY,
  value text NOT NULL
);
