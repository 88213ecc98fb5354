-- ACME nonces spent, for engines several processes share: a nonce any instance issued is good once
-- at any instance. The SQLite engine has one process (serve.lock), whose nonce pool keeps spent
-- nonces in memory; the table is here so both engines meet one contract. Never edit once landed.
CREATE TABLE acme_spent_nonces (
  nonce      TEXT PRIMARY KEY,
  expires_at TEXT NOT NULL
);
CREATE INDEX acme_spent_nonces_expiry ON acme_spent_nonces (expires_at);
