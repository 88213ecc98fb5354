-- Intermediate rotation. Never edit once landed. A retired intermediate stays in service (CRL,
-- OCSP) until the last certificate it issued expires; finding that time is this index's job.
CREATE INDEX certificates_issuer_not_after ON certificates (issuer_id, not_after);
