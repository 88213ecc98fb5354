import pg from 'pg';
import { StoreError } from '../contracts/errors.js';
import type { CoordinationEngine, HeldLock, NoticeTopic } from '../contracts/store.js';
import { advisoryKey, noticeChannel } from './pg-context.js';
import { toStorageError, unavailableReason } from './pg-errors.js';
import type { PgLogger } from './pg-logger.js';

const topics: readonly NoticeTopic[] = ['revocations', 'issuers', 'crls'];
const firstRetryMs = 250;
const maxRetryMs = 4000;

/**
 * Coordination among every process on one PostgreSQL database. Locks are session advisory locks,
 * each held by a connection of its own (outside the pool, so a lock held for hours takes no pool
 * slot): a holder that dies loses its connection, and with it the lock, so another instance can
 * take it at once. Notices are LISTEN/NOTIFY on one listening connection per store, opened on the
 * first `subscribe` and reopened with backoff after it drops; since notices sent while it was down
 * are lost, every subscriber is called once after a reconnect.
 */
export class PgCoordination implements CoordinationEngine {
  private readonly heldHere = new Set<string>();
  private readonly lockClients = new Set<pg.Client>();
  private readonly subscribers = new Map<NoticeTopic, Set<() => void>>();
  private listener: pg.Client | null = null;
  /** The topics the current listening connection LISTENs on. */
  private listening = new Set<NoticeTopic>();
  private connecting: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryMs = firstRetryMs;
  private closed = false;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly logger: PgLogger,
  ) {}

  async tryLock(name: string): Promise<HeldLock | null> {
    if (this.closed) throw new StoreError('storageUnavailable', 'the store is closed');
    // Each lock has a session of its own, so the server would refuse a second one from this
    // process too; the names held here answer that without opening a connection.
    if (this.heldHere.has(name)) return null;
    this.heldHere.add(name);
    const client = new pg.Client(this.config);
    let lost = false;
    const lose = (): void => {
      if (lost) return;
      lost = true;
      this.heldHere.delete(name);
      this.lockClients.delete(client);
    };
    client.on('error', (err) => {
      this.logger.warn('store_lock_connection_lost', { lock: name, reason: unavailableReason(err) ?? 'error' });
      lose();
    });
    client.on('end', lose);
    this.lockClients.add(client);
    try {
      await client.connect();
      const { rows } = await client.query<{ locked: boolean }>(
        `SELECT pg_try_advisory_lock(${advisoryKey('$1')}) AS locked`,
        [`lock:${name}`],
      );
      if (rows[0]?.locked !== true) {
        lose();
        await client.end().catch(() => undefined);
        return null;
      }
    } catch (err) {
      lose();
      await client.end().catch(() => undefined);
      throw toStorageError(err);
    }
    return {
      get held(): boolean {
        return !lost;
      },
      async release(): Promise<void> {
        if (lost) return;
        lose();
        // Ending the session releases the lock with it; the explicit unlock only makes it prompt.
        await client.query(`SELECT pg_advisory_unlock(${advisoryKey('$1')})`, [`lock:${name}`]).catch(() => undefined);
        await client.end().catch(() => undefined);
      },
    };
  }

  /**
   * Listens on `topic` (opening the listening connection on first use) before it resolves, so a
   * write committed after it is noticed. Unsubscribing stops the calls; the channel stays
   * listened to until the store closes, which costs nothing while no notice is sent on it.
   */
  async subscribe(topic: NoticeTopic, onNotice: () => void): Promise<() => void> {
    if (this.closed) throw new StoreError('storageUnavailable', 'the store is closed');
    let set = this.subscribers.get(topic);
    if (set === undefined) {
      set = new Set();
      this.subscribers.set(topic, set);
    }
    set.add(onNotice);
    if (this.listener === null) await this.connectListener(false);
    const listener = this.listener;
    if (listener !== null && !this.listening.has(topic)) {
      try {
        await this.listen(listener, topic);
      } catch (err) {
        // The connection dropped in between: its reconnect listens on every topic.
        this.logger.warn('store_notices_listen_failed', { topic, reason: unavailableReason(err) ?? 'error' });
      }
    }
    return () => {
      set.delete(onNotice);
    };
  }

  /** Ends every lock's connection (releasing the locks) and the listening connection; idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const clients = [...this.lockClients, ...(this.listener === null ? [] : [this.listener])];
    this.lockClients.clear();
    this.heldHere.clear();
    this.listener = null;
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }

  // Opens the listening connection and LISTENs on every topic that has subscribers. A failure is
  // logged and retried with backoff rather than thrown: notices only speed readers up, and a
  // store whose database is down for a moment must still start.
  private connectListener(reconnect: boolean): Promise<void> {
    this.connecting ??= this.openListener(reconnect).finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async openListener(reconnect: boolean): Promise<void> {
    const client = new pg.Client(this.config);
    let dropped = false;
    const drop = (err?: Error): void => {
      if (dropped) return;
      dropped = true;
      if (this.listener === client) this.listener = null;
      client.end().catch(() => undefined);
      if (this.closed) return;
      this.logger.warn('store_notices_connection_lost', {
        reason: err === undefined ? 'ended' : (unavailableReason(err) ?? 'error'),
        retryInMs: this.retryMs,
      });
      this.scheduleReconnect();
    };
    client.on('error', drop);
    client.on('end', () => drop());
    client.on('notification', (message) => {
      const topic = topics.find((t) => noticeChannel(t) === message.channel);
      if (topic !== undefined) this.deliver(topic);
    });
    const listening = new Set<NoticeTopic>();
    try {
      await client.connect();
      for (const topic of this.subscribers.keys()) {
        await this.listen(client, topic);
        listening.add(topic);
      }
    } catch (err) {
      drop(err instanceof Error ? err : undefined);
      return;
    }
    if (this.closed || dropped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.listener = client;
    this.listening = listening;
    this.retryMs = firstRetryMs;
    if (reconnect) {
      this.logger.info('store_notices_reconnected', {});
      // Notices sent while no connection listened are lost: let every subscriber look once.
      for (const topic of this.subscribers.keys()) this.deliver(topic);
    }
  }

  private scheduleReconnect(): void {
    if (this.retryTimer !== null || this.closed) return;
    const delay = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, maxRetryMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connectListener(true);
    }, delay);
    this.retryTimer.unref();
  }

  private async listen(client: pg.Client, topic: NoticeTopic): Promise<void> {
    // A channel name is an identifier, not a parameter: the topic comes from a fixed union.
    await client.query(`LISTEN ${noticeChannel(topic)}`);
    if (client === this.listener) this.listening.add(topic);
  }

  private deliver(topic: NoticeTopic): void {
    for (const onNotice of [...(this.subscribers.get(topic) ?? [])]) {
      try {
        onNotice();
      } catch (err) {
        this.logger.warn('store_notice_subscriber_failed', { topic, error: err instanceof Error ? err.name : 'error' });
      }
    }
  }
}
