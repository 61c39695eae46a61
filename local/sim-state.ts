import { appendFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import type { Server } from 'node:http';
import { join } from 'node:path';
import * as z from 'zod/mini';
import { DataDirError, displayPath, explainFsError, makePrivateDir } from './data-dir';

/**
 * What a simulated upstream keeps across a restart of `npm start`: its jobs and its port.
 * A task that was rendering when the process died finishes after the restart, and the video
 * URLs and callbacks the gateway already holds keep pointing at a live server.
 *
 * A simulator uses it in three steps:
 *
 *   const state = openSimState({ dir, name: 'fal', job: myJobSchema });   // jobs of the last run
 *   const port = await listenRemembered(server, host, state, options.port); // the same port again
 *   state.put(job.id, job);                                               // after every change
 *
 * and on start re-arms the timers of the jobs in `state.jobs` (once the gateway can take
 * callbacks), sends again the final callbacks that were never answered with a 2xx, and
 * calls `state.close()` when it stops.
 *
 * The jobs live in `<dir>/<name>.jsonl`, a journal: one line per change (`{"at","id","job"}`)
 * or port (`{"at","port"}`), appended, so a submit costs one small write whatever the number
 * of jobs; on open the file is read (the last line per job wins), checked against `job`, and
 * rewritten without the jobs last changed more than `keepMs` ago.
 */

export interface SimStateOptions<S extends z.ZodMiniType> {
  /** Directory of the journals (the local gateway uses `<DATA_DIR>/upstreams`). */
  dir: string;
  /** The simulator's name; names the file. */
  name: string;
  /** Schema of one job, as the simulator keeps it (JSON-safe). */
  job: S;
  /** Jobs unchanged for longer than this are dropped on open; default 48 h (the longest task deadline and then some). */
  keepMs?: number;
}

export interface SimState<J> {
  readonly file: string;
  /** The jobs of the last run, by id. */
  readonly jobs: ReadonlyMap<string, J>;
  /** The port of the last run, to listen on again. */
  readonly port: number | undefined;
  /** Record a job as it is now. */
  put(id: string, job: J): void;
  rememberPort(port: number): void;
  close(): void;
}

const DEFAULT_KEEP_MS = 48 * 3600_000;
const simNameSchema = /^[a-z0-9][a-z0-9-]{0,63}$/;

export function openSimState<S extends z.ZodMiniType>(options: SimStateOptions<S>): SimState<z.infer<S>> {
  type Job = z.infer<S>;
  if (!simNameSchema.test(options.name)) throw new Error(`simulator name "${options.name}" must be lowercase letters, digits and -`);
  makePrivateDir(options.dir);
  const file = join(options.dir, `${options.name}.jsonl`);
  const keepMs = options.keepMs ?? DEFAULT_KEEP_MS;
  const entrySchema = z.union([
    z.object({ at: z.number(), id: z.string(), job: options.job }),
    z.object({ at: z.number(), port: z.number().check(z.int(), z.gte(1), z.lte(65535)) }),
  ]);
  const remedy = `It holds the ${options.name} simulator's jobs: delete it to start that simulator empty (tasks it was rendering then fail when their deadline passes).`;

  const jobs = new Map<string, { at: number; job: Job }>();
  let port: number | undefined;
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw explainFsError(error, file, 'read');
  }
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let entry: z.infer<typeof entrySchema> | undefined;
    try {
      const parsed = entrySchema.safeParse(JSON.parse(line));
      if (parsed.success) entry = parsed.data;
    } catch {
      entry = undefined;
    }
    if (!entry) {
      // The last line may be cut short by a crash in mid-write; anything before it is damage.
      if (i === lines.length - 1) return;
      throw new DataDirError(`${displayPath(file)} line ${i + 1} is not a job the simulator wrote. ${remedy}`);
    }
    if ('port' in entry) port = entry.port;
    else jobs.set(entry.id, { at: entry.at, job: (entry as { job: Job }).job });
  });

  const now = Date.now();
  for (const [id, { at }] of jobs) if (now - at > keepMs) jobs.delete(id);
  const compacted = [
    ...(port !== undefined ? [JSON.stringify({ at: now, port })] : []),
    ...[...jobs].map(([id, { at, job }]) => JSON.stringify({ at, id, job })),
  ];
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, compacted.length ? `${compacted.join('\n')}\n` : '', { mode: 0o600 });
    renameSync(temporary, file);
  } catch (error) {
    throw explainFsError(error, file, 'write');
  }

  let closed = false;
  const append = (entry: object) => {
    if (closed) return;
    try {
      appendFileSync(file, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
    } catch {
      // A full disk costs this record only: the simulator keeps serving from memory.
    }
  };

  return {
    file,
    jobs: new Map([...jobs].map(([id, { job }]) => [id, job])),
    port,
    put: (id, job) => append({ at: Date.now(), id, job }),
    rememberPort(p) {
      if (p !== port) append({ at: Date.now(), port: p });
      port = p;
    },
    close() {
      closed = true;
    },
  };
}

/**
 * Listen on the port of the last run (or `port` when given), so URLs handed out before a
 * restart still answer; when that port is taken now, on a free one, saying so.
 */
export async function listenRemembered(
  server: Server,
  host: string,
  state: SimState<unknown> | undefined,
  port?: number,
  log: (msg: string, fields?: object) => void = () => {},
): Promise<number> {
  const listen = async (p: number) => {
    server.listen(p, host);
    await once(server, 'listening');
  };
  const wanted = port ?? state?.port ?? 0;
  try {
    await listen(wanted);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port !== undefined || wanted === 0) throw error;
    log('simulator port of the last run is taken; URLs handed out before the restart no longer answer', { port: wanted });
    await listen(0);
  }
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('simulator has no TCP address');
  state?.rememberPort(address.port);
  return address.port;
}
