/**
 * SIGTERM and SIGINT as a promise of the signal's name, handled from the moment this is called,
 * so a SIGTERM right after `listening` still shuts down cleanly. `release` stops handling them.
 */
export function stopSignals(): { signal: Promise<string>; release(): void } {
  let stopRequested!: (signal: string) => void;
  const signal = new Promise<string>((resolve) => (stopRequested = resolve));
  const onSignal = (name: NodeJS.Signals) => stopRequested(name);
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  return {
    signal,
    release: () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    },
  };
}
