/**
 * One validation attempt's time budget. Every network step races against it, so an attempt ends
 * by `timeoutMs` whatever the remote side does; `dispose` clears the timer on every path.
 */
export class Deadline {
  readonly signal: AbortSignal;
  readonly #controller = new AbortController();
  readonly #timer: NodeJS.Timeout;

  constructor(readonly timeoutMs: number) {
    this.signal = this.#controller.signal;
    this.#timer = setTimeout(() => this.#controller.abort(), timeoutMs);
  }

  /** Settles as `work` does, or rejects with `onTimeout()` once the deadline passes first. */
  race<T>(work: Promise<T>, onTimeout: () => Error): Promise<T> {
    if (this.signal.aborted) {
      work.catch(() => {}); // settles later; nobody waits for it any more
      return Promise.reject(onTimeout());
    }
    return new Promise<T>((resolve, reject) => {
      const expire = () => reject(onTimeout());
      this.signal.addEventListener('abort', expire, { once: true });
      work.then(
        (value) => {
          this.signal.removeEventListener('abort', expire);
          resolve(value);
        },
        (error: unknown) => {
          this.signal.removeEventListener('abort', expire);
          reject(error);
        },
      );
    });
  }

  dispose(): void {
    clearTimeout(this.#timer);
  }
}
