import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the agent knows about its certificate, as `/health` reports it. */
export interface AgentStatus {
  subject: string | null;
  serial: string | null;
  notBefore: Date | null;
  notAfter: Date | null;
  nextRenewal: Date | null;
  lastRenewal: Date | null;
  lastError: string | null;
  /** Consecutive failed attempts since the last success. */
  failures: number;
}

/**
 * Healthy unless the certificate has expired (or there is none), or it is in the last tenth of
 * its life and renewals are failing: the moments an orchestrator should act.
 */
export function isHealthy(status: AgentStatus, now: Date): boolean {
  if (status.notBefore === null || status.notAfter === null) return false;
  const t = now.getTime();
  if (t >= status.notAfter.getTime()) return false;
  const lastTenth = status.notAfter.getTime() - (status.notAfter.getTime() - status.notBefore.getTime()) / 10;
  return !(t >= lastTenth && status.failures > 0);
}

/** Serves GET /health (and /) as JSON on `host:port`: 200 when healthy, 503 otherwise. */
export async function startHealthServer(
  addr: { host: string; port: number },
  status: () => AgentStatus,
  now: () => Date,
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/health' && req.url !== '/')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"GET /health"}');
      return;
    }
    const s = status();
    const healthy = isHealthy(s, now());
    const iso = (d: Date | null) => (d === null ? null : d.toISOString());
    const body = {
      status: healthy ? 'ok' : 'unhealthy',
      subject: s.subject,
      serial: s.serial,
      notBefore: iso(s.notBefore),
      notAfter: iso(s.notAfter),
      nextRenewal: iso(s.nextRenewal),
      lastRenewal: iso(s.lastRenewal),
      lastError: s.lastError,
      failures: s.failures,
    };
    res
      .writeHead(healthy ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      .end(JSON.stringify(body));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
