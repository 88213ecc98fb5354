import { EventEmitter } from 'node:events';
import type { CoordinationEngine, HeldLock, NoticeTopic } from './contracts/store.js';

/**
 * Coordination for the SQLite engine, where one process owns the database (`serve.lock`): locks
 * and notices only need to reach this process. A CLI verb writing from another process (`shortleaf
 * revoke`) sends no notice here; `serve` finds its writes by polling, as it always has.
 */
export class SqliteCoordination implements CoordinationEngine {
  private readonly held = new Set<string>();
  private readonly notices = new EventEmitter();

  async tryLock(name: string): Promise<HeldLock | null> {
    if (this.held.has(name)) return null;
    this.held.add(name);
    let held = true;
    return {
      get held() {
        return held;
      },
      release: async () => {
        if (!held) return;
        held = false;
        this.held.delete(name);
      },
    };
  }

  async subscribe(topic: NoticeTopic, onNotice: () => void): Promise<() => void> {
    this.notices.on(topic, onNotice);
    return () => void this.notices.off(topic, onNotice);
  }

  /** Tells this process's subscribers of a committed write, after the writer's own code has run. */
  notify(topic: NoticeTopic): void {
    setImmediate(() => this.notices.emit(topic));
  }
}
