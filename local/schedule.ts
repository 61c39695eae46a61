/**
 * The local stand-in for an EventBridge rate schedule: runs `fn` every `everyMs`, never two
 * runs at once (a tick that finds a run still going is skipped), and a run that throws is
 * logged, not fatal. The timer does not keep the process alive.
 */

export type ScheduleLog = (msg: string, fields?: Record<string, unknown>) => void;

export interface Schedule {
  /** Stops the timer and waits for a running (or queued) call to finish. */
  stop(): Promise<void>;
  /** Runs now, or once more right after the running call; resolves when that run is over. */
  runNow(): Promise<void>;
}

export function startSchedule(fn: () => Promise<unknown>, everyMs: number, log: ScheduleLog = () => {}): Schedule {
  if (!(everyMs > 0)) throw new Error('everyMs must be positive');
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  let stopped = false;

  async function runOnce(): Promise<void> {
    const startedAt = Date.now();
    try {
      await fn();
    } catch (error) {
      log('scheduled run failed', {
        ...(error instanceof Error ? { error: error.message, stack: error.stack } : { error: String(error) }),
        durationMs: Date.now() - startedAt,
      });
    }
  }

  function start(): Promise<void> {
    const run = runOnce().finally(() => {
      if (running === run) running = undefined;
    });
    running = run;
    return run;
  }

  const timer = setInterval(() => {
    if (!stopped && !running && !queued) void start();
  }, everyMs);
  timer.unref();

  return {
    runNow() {
      if (stopped) return Promise.resolve();
      if (!running) return start();
      // Concurrent requests during a run share one follow-up run.
      queued ??= running.then(() => {
        queued = undefined;
        return stopped ? undefined : start();
      });
      return queued;
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await queued;
      await running;
    },
  };
}
