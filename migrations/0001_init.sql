-- Shortleaf schema, version 1. Never edit this file once it has landed: change the schema with a
-- new numbered file. Times are ISO-8601 UTC text (Date.prototype.toISOString), which sorts in
-- time order; serials and fingerprints are lowercase hex.

-- Intermediate (issuing) keys. The private key is sealed (see packages/store/src/seal.ts); the
-- certificate arrives later, once the offline root has signed the CSR.
CREATE TABLE issuers (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL UNIQUE,
  sealed_key    BLOB NOT NULL,
  key_algorithm TEXT NOT NULL,
  csr_der       BLOB NOT NULL,
  cert_der      BLOB,
  created_at    TEXT NOT NULL,
  activated_at  TEXT,
  active        INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1))
);

-- At most one issuer signs at a time.
CREATE UNIQUE INDEX issuers_one_active ON issuers (active) WHERE active = 1;

-- Trust anchors we publish. Public certificates only: the root private key never enters the server.
CREATE TABLE roots (
  fingerprint TEXT PRIMARY KEY, -- SHA-256 of cert_der
  cert_der    BLOB NOT NULL,
  added_at    TEXT NOT NULL
);

CREATE TABLE provisioners (
  name       TEXT PRIMARY KEY,
  type       TEXT NOT NULL CHECK (type IN ('jwk', 'acme')),
  public_jwk TEXT,
  policy     TEXT NOT NULL, -- JSON, interpreted by the authority
  created_at TEXT NOT NULL
);

-- Every certificate is first reserved (serial and intent recorded, der NULL), then completed with
-- the signed DER. The primary key is what guarantees a serial is never reused.
CREATE TABLE certificates (
  serial      TEXT PRIMARY KEY,
  issuer_id   TEXT NOT NULL REFERENCES issuers (id),
  subject     TEXT NOT NULL,
  names       TEXT NOT NULL, -- JSON array of strings
  not_before  TEXT NOT NULL,
  not_after   TEXT NOT NULL,
  der         BLOB,
  provisioner TEXT NOT NULL,
  requester   TEXT NOT NULL,
  status      TEXT NOT NULL CHECK (status IN ('reserved', 'issued')),
  created_at  TEXT NOT NULL,
  issued_at   TEXT
);

CREATE INDEX certificates_not_after ON certificates (not_after);

-- One-time tokens already spent, kept until they would have expired anyway.
CREATE TABLE token_uses (
  provisioner TEXT NOT NULL,
  jti         TEXT NOT NULL,
  expires_at  TEXT NOT NULL,
  PRIMARY KEY (provisioner, jti)
);

-- Pruning by expiry runs while issuance writes here; keep it off a full scan.
CREATE INDEX token_uses_expires_at ON token_uses (expires_at);

CREATE TABLE audit_log (
  id     INTEGER PRIMARY KEY AUTOINCREMENT,
  at     TEXT NOT NULL,
  action TEXT NOT NULL,
  actor  TEXT NOT NULL,
  serial TEXT,
  detail TEXT NOT NULL DEFAULT '{}' -- JSON object
);

CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
