-- ACME (RFC 8555) state on PostgreSQL: accounts, their external account binding keys, orders,
-- authorizations, challenges, and the nonces spent at any instance. The final shape of SQLite's
-- migrations 0003 and 0009, with the same table and column names, so `store copy` moves SQLite
-- rows over column by column (ISO text casts to timestamptz, 0/1 to boolean, blobs to bytea).
-- Ids are random text made by the caller; JSON columns are text the store does not interpret.
-- Never edit once landed.

-- One account per key per provisioner: the key's RFC 7638 thumbprint is what a request names.
-- eab_kid references acme_eab_keys, which references this table back; that key is added below.
CREATE TABLE acme_accounts (
  id          text PRIMARY KEY,
  provisioner text NOT NULL REFERENCES provisioners (name),
  thumbprint  text NOT NULL,
  jwk         text NOT NULL, -- public JWK, JSON
  status      text NOT NULL CHECK (status IN ('valid', 'deactivated', 'revoked')),
  contact     text NOT NULL DEFAULT '[]', -- JSON array of URLs
  eab_kid     text,
  created_at  timestamptz NOT NULL,
  UNIQUE (provisioner, thumbprint)
);

-- External account binding keys (RFC 8555 §7.3.4), HMAC keys sealed at rest. A key binds one
-- account, once: account_id goes from NULL to the account in the transaction that creates it.
CREATE TABLE acme_eab_keys (
  kid         text PRIMARY KEY,
  provisioner text NOT NULL REFERENCES provisioners (name),
  sealed_key  bytea NOT NULL,
  account_id  text UNIQUE,
  created_at  timestamptz NOT NULL,
  bound_at    timestamptz,
  CHECK ((account_id IS NULL) = (bound_at IS NULL))
);

-- The two references between accounts and keys are checked at each statement like every other,
-- but may be deferred to commit (SET CONSTRAINTS ... DEFERRED), so a copy can insert both tables'
-- rows in any order.
ALTER TABLE acme_accounts ADD CONSTRAINT acme_accounts_eab_kid_fkey
  FOREIGN KEY (eab_kid) REFERENCES acme_eab_keys (kid) DEFERRABLE INITIALLY IMMEDIATE;
ALTER TABLE acme_eab_keys ADD CONSTRAINT acme_eab_keys_account_id_fkey
  FOREIGN KEY (account_id) REFERENCES acme_accounts (id) DEFERRABLE INITIALLY IMMEDIATE;

CREATE INDEX acme_eab_keys_provisioner ON acme_eab_keys (provisioner, created_at);

-- Stored order status: `ready` and expiry are derived from the authorizations when read. `seq`
-- (SQLite's rowid; filled on insert) orders orders created at the same instant: the later
-- inserted is the newer.
CREATE TABLE acme_orders (
  id                 text PRIMARY KEY,
  account_id         text NOT NULL REFERENCES acme_accounts (id),
  status             text NOT NULL CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),
  identifiers        text NOT NULL, -- JSON array of {type, value}
  not_before         timestamptz,
  not_after          timestamptz,
  expires            timestamptz NOT NULL,
  error              text, -- JSON problem document
  certificate_serial text,
  replaces           text, -- RFC 9773 ARI certificate ID
  replaces_serial    text,
  created_at         timestamptz NOT NULL,
  seq                bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);

-- Listing an account's orders newest first, and counting them for rate limits.
CREATE INDEX acme_orders_account ON acme_orders (account_id, created_at, seq);

-- A certificate comes from one order.
CREATE UNIQUE INDEX acme_orders_certificate ON acme_orders (certificate_serial) WHERE certificate_serial IS NOT NULL;

-- RFC 9773 §5: a certificate is replaced by one order at a time; a failed (invalid) order frees it.
-- Two instances creating replacing orders at once: the index lets one of them in.
CREATE UNIQUE INDEX acme_orders_replaces ON acme_orders (replaces_serial) WHERE replaces_serial IS NOT NULL AND status <> 'invalid';

CREATE TABLE acme_authorizations (
  id               text PRIMARY KEY,
  account_id       text NOT NULL REFERENCES acme_accounts (id),
  identifier_type  text NOT NULL CHECK (identifier_type IN ('dns', 'ip')),
  identifier_value text NOT NULL,
  wildcard         boolean NOT NULL,
  status           text NOT NULL CHECK (status IN ('pending', 'valid', 'invalid', 'deactivated', 'revoked')),
  expires          timestamptz NOT NULL,
  created_at       timestamptz NOT NULL
);

-- Finding a valid, unexpired authorization to reuse for a new order.
CREATE INDEX acme_authorizations_reuse ON acme_authorizations (account_id, identifier_type, identifier_value, wildcard, status, expires);

-- The authorizations of an order, in the order of its identifiers. An authorization may be shared
-- by several orders of its account (reuse).
CREATE TABLE acme_order_authorizations (
  order_id         text NOT NULL REFERENCES acme_orders (id),
  position         integer NOT NULL CHECK (position >= 0),
  authorization_id text NOT NULL REFERENCES acme_authorizations (id),
  PRIMARY KEY (order_id, position)
);

-- Challenges of an authorization, read in insertion order (`seq`, SQLite's rowid; filled on
-- insert). account_id repeats the authorization's so that failed validations per account are an
-- indexed count; validated is the time of the attempt that settled the challenge, valid or invalid.
CREATE TABLE acme_challenges (
  id               text PRIMARY KEY,
  authorization_id text NOT NULL REFERENCES acme_authorizations (id),
  account_id       text NOT NULL REFERENCES acme_accounts (id),
  type             text NOT NULL CHECK (type IN ('http-01', 'dns-01', 'tls-alpn-01')),
  token            text NOT NULL,
  status           text NOT NULL CHECK (status IN ('pending', 'processing', 'valid', 'invalid')),
  validated        timestamptz,
  error            text, -- JSON problem document
  seq              bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);

CREATE INDEX acme_challenges_authorization ON acme_challenges (authorization_id, seq);
CREATE INDEX acme_challenges_failures ON acme_challenges (account_id, status, validated);

-- ACME nonces spent at any instance: a nonce one instance issued is good once at every instance.
-- The first INSERT of a nonce wins (ON CONFLICT DO NOTHING); rows go once the nonce has expired.
CREATE TABLE acme_spent_nonces (
  nonce      text PRIMARY KEY,
  expires_at timestamptz NOT NULL
);

CREATE INDEX acme_spent_nonces_expiry ON acme_spent_nonces (expires_at);
