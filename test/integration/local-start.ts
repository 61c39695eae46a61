import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** A free loopback port (the gateway's own port must stay the same across a restart). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

export interface StartedGateway {
  proc: ChildProcess;
  output(): string;
  /** Resolves with the exit code once the process has ended (and been reaped). */
  exited: Promise<number | null>;
}

/**
 * `npm start` as a user runs it (bin/local.ts in a child process) on `dataDir`; resolves
 * once it printed "Ctrl-C stops.", or, with `expectExit`, once it ended.
 */
export async function startNpmStart(
  dataDir: string,
  env: Record<string, string> = {},
  options: { expectExit?: boolean; preload?: string } = {},
): Promise<StartedGateway> {
  const args = ['--import', 'tsx', ...(options.preload ? ['--import', options.preload] : []), 'bin/local.ts'];
  const proc = spawn(process.execPath, args, {
    env: { ...process.env, DATA_DIR: dataDir, SIM_RENDER_MS: '300', LOCAL_API_KEY: '', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start did not ${options.expectExit ? 'exit' : 'come up'}:\n${out}`)), 60_000);
    if (options.expectExit) {
      void exited.then(() => {
        clearTimeout(timer);
        resolve();
      });
      return;
    }
    const check = () => {
      if (out.includes('Ctrl-C stops.')) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', check);
    void exited.then((code) => reject(new Error(`npm start exited with ${code}:\n${out}`)));
  });
  return { proc, output: () => out, exited };
}

export const stopNpmStart = async (started: StartedGateway, signal: NodeJS.Signals = 'SIGINT') => {
  started.proc.kill(signal);
  return started.exited;
};
