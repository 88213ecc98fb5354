-- Certificates per provisioner and requester, newest last: a Kubernetes or OIDC provisioner counts
-- what one identity (a service account, an ID token's iss and sub) got in a sliding window
-- (--max-certificates-per-identity) before it issues another, on whichever instance it asks.
-- Never edit once landed.
CREATE INDEX certificates_requester ON certificates (provisioner, requester, created_at);
