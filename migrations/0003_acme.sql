-- ACME (RFC 8555) state: accounts, their external account binding keys, orders, authorizations and
-- challenges; and per-provisioner options. Never edit once landed. Ids are random text made by the
-- caller; JSON columns hold what the ACME front door gives, which the store does not interpret.

-- Options of a provisioner as JSON (for ACME: whether EAB is required, rate limits, terms of service).
ALTER TABLE provisioners ADD COLUMN options TEXT NOT NULL DEFAULT '{}';

-- One account per key per provisioner: the key's RFC 7638 thumbprint is what a request names.
CREATE TABLE acme_accounts (
  id          TEXT PRIMARY KEY,
  provisioner TEXT NOT NULL REFERENCES provisioners (name),
  thumbprint  TEXT NOT NULL,
  jwk         TEXT NOT NULL, -- public JWK, JSON
  status      TEXT NOT NULL CHECK (status IN ('valid', 'deactivated', 'revoked')),
  contact     TEXT NOT NULL DEFAULT '[]', -- JSON array of URLs
  eab_kid     TEXT REFERENCES acme_eab_keys (kid),
  created_at  TEXT NOT NULL,
  UNIQUE (provisioner, thumbprint)
);

-- External account binding keys (RFC 8555 §7.3.4), HMAC keys sealed at rest. A key binds one
-- account, once: account_id goes from NULL to the account in the transaction that creates it.
CREATE TABLE acme_eab_keys (
  kid         TEXT PRIMARY KEY,
  provisioner TEXT NOT NULL REFERENCES provisioners (name),
  sealed_key  BLOB NOT NULL,
  account_id  TEXT UNIQUE REFERENCES acme_accounts (id),
  created_at  TEXT NOT NULL,
  bound_at    TEXT,
  CHECK ((account_id IS NULL) = (bound_at IS NULL))
);

CREATE INDEX acme_eab_keys_provisioner ON acme_eab_keys (provisioner, created_at);

-- Stored order status: `ready` and expiry are derived from the authorizations when read.
CREATE TABLE acme_orders (
  id                 TEXT PRIMARY KEY,
  account_id         TEXT NOT NULL REFERENCES acme_accounts (id),
  status             TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),
  identifiers        TEXT NOT NULL, -- JSON array of {type, value}
  not_before         TEXT,
  not_after          TEXT,
  expires            TEXT NOT NULL,
  error              TEXT, -- JSON problem document
  certificate_serial TEXT,
  replaces           TEXT, -- RFC 9773 ARI certificate ID
  replaces_serial    TEXT,
  created_at         TEXT NOT NULL
);

-- Listing an account's orders newest first, and counting them for rate limits.
CREATE INDEX acme_orders_account ON acme_orders (account_id, created_at);

-- A certificate comes from one order.
CREATE UNIQUE INDEX acme_orders_certificate ON acme_orders (certificate_serial) WHERE certificate_serial IS NOT NULL;

-- RFC 9773 §5: a certificate is replaced by one order at a time; a failed (invalid) order frees it.
CREATE UNIQUE INDEX acme_orders_replaces ON acme_orders (replaces_serial) WHERE replaces_serial IS NOT NULL AND status != 'invalid';

CREATE TABLE acme_authorizations (
  id               TEXT PRIMARY KEY,
  account_id       TEXT NOT NULL REFERENCES acme_accounts (id),
  identifier_type  TEXT NOT NULL CHECK (identifier_type IN ('dns', 'ip')),
  identifier_value TEXT NOT NULL,
  wildcard         INTEGER NOT NULL CHECK (wildcard IN (0, 1)),
  status           TEXT NOT NULL CHECK (status IN ('pending', 'valid', 'invalid', 'deactivated', 'revoked')),
  expires          TEXT NOT NULL,
  created_at       TEXT NOT NULL
);

-- Finding a valid, unexpired authorization to reuse for a new order.
CREATE INDEX acme_authorizations_reuse ON acme_authorizations (account_id, identifier_type, identifier_value, wildcard, status, expires);

-- The authorizations of an order, in the order of its identifiers. An authorization may be shared
-- by several orders of its account (reuse).
CREATE TABLE acme_order_authorizations (
  order_id         TEXT NOT NULL REFERENCES acme_orders (id),
  position         INTEGER NOT NULL CHECK (position >= 0),
  authorization_id TEXT NOT NULL REFERENCES acme_authorizations (id),
  PRIMARY KEY (order_id, position)
) WITHOUT ROWID;

-- Challenges of an authorization, read in insertion (rowid) order. account_id repeats the
-- authorization's so that failed validations per account are an indexed count; validated is the
-- time of the attempt that settled the challenge, valid or invalid.
CREATE TABLE acme_challenges (
  id               TEXT PRIMARY KEY,
  authorization_id TEXT NOT NULL REFERENCES acme_authorizations (id),
  account_id       TEXT NOT NULL REFERENCES acme_accounts (id),
  type             TEXT NOT NULL CHECK (type IN ('http-01', 'dns-01', 'tls-alpn-01')),
  token            TEXT NOT NULL,
  status           TEXT NOT NULL CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),
  validated        TEXT,
  error            TEXT -- JSON problem document
);

CREATE INDEX acme_challenges_authorization ON acme_challenges (authorization_id);
CREATE INDEX acme_challenges_failures ON acme_challenges (account_id, status, validated);
