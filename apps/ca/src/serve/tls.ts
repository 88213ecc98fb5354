// TLS 1.3's own suites, then for TLS 1.2 only forward-secret ECDHE with AEAD ciphers (Mozilla's
// "intermediate" profile): no CBC, no RSA key exchange, no SHA-1 MACs.
const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** Given to every secure context: setSecureContext (the certificate's renewal) starts from Node's defaults. */
export const TLS_OPTIONS = { minVersion: 'TLSv1.2', ciphers: TLS_CIPHERS, honorCipherOrder: true } as const;

/** The HTTPS listener's certificate and key, in the TLS options every secure context gets. */
export const secureContextOf = (creds: { key: string; cert: string }) => ({
  ...TLS_OPTIONS,
  key: creds.key,
  cert: creds.cert,
});
