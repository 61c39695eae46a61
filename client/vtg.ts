import { basename } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { Presets, SingleBar } from 'cli-progress';
import { GatewayClient, GatewayError, type TaskView } from './api';

/**
 * `vtg`: the gateway's client on the command line.
 *
 *   vtg generate --model M --prompt "…" [--duration N] [--aspect-ratio R] [--image URL] [--out video.mp4]
 *   vtg status ID | vtg list | vtg download ID [--out F] | vtg models
 *
 * The gateway and key come from VTG_URL and VTG_KEY, or --url and --key. Exit codes: 0 done,
 * 1 the task failed, 2 a usage or request error (bad flags, refused request, unreachable).
 */

export const EXIT = { ok: 0, taskFailed: 1, usage: 2 } as const;

export interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  env: Record<string, string | undefined>;
}

interface Globals {
  url?: string;
  key?: string;
  json?: boolean;
  interval: number;
}

const positiveInt = (what: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError(`${what} must be a positive whole number`);
  return n;
};

/** Which stretch of its life a task is in, as the progress bar names it. */
const phaseOf = (t: TaskView) => t.phase ?? (t.status === 'in_progress' ? 'rendering' : t.status);

class TaskFailed extends Error {
  constructor(readonly task: TaskView) {
    super(`task ${task.id} failed: ${task.error?.code ?? 'failed'}: ${task.error?.message ?? ''}`);
  }
}

export async function main(argv: string[], io: Io): Promise<number> {
  const print = (line: string) => io.stdout.write(`${line}\n`);
  const program = new Command('vtg')
    .description('Create and fetch videos through a Video Task Gateway')
    .option('--url <url>', 'the gateway URL (default: $VTG_URL)')
    .option('--key <key>', 'your API key (default: $VTG_KEY)')
    .option('--json', 'print machine-readable JSON instead of text')
    .addOption(new Option('--interval <ms>', 'how often to poll a task').default(1000).argParser(positiveInt('--interval')))
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError();

  const client = (): { api: GatewayClient; g: Globals } => {
    const g = program.opts<Globals>();
    const url = g.url ?? io.env.VTG_URL;
    const key = g.key ?? io.env.VTG_KEY;
    if (!url) throw new CommanderError(EXIT.usage, 'vtg.config', 'set VTG_URL (or --url) to the gateway URL');
    if (!key) throw new CommanderError(EXIT.usage, 'vtg.config', 'set VTG_KEY (or --key) to your API key');
    return { api: new GatewayClient(url, key), g };
  };

  program
    .command('generate')
    .description('create a video, show its progress, and download it')
    .requiredOption('--model <model>', 'a model from `vtg models`')
    .requiredOption('--prompt <text>', 'what the video shows')
    .option('--duration <seconds>', 'one of the model\'s durations', positiveInt('--duration'))
    .option('--aspect-ratio <ratio>', 'one of the model\'s aspect ratios, e.g. 16:9')
    .option('--image <url>', 'a reference image URL')
    .option('--callback-url <url>', 'a webhook URL to tell when the task ends')
    .option('--idempotency-key <key>', 'makes a retried generate return the same task')
    .option('--out <file>', 'where to write the video (default: <task id>.mp4)')
    .option('--no-download', 'stop when the video is ready, without downloading it')
    .action(async (o: { model: string; prompt: string; duration?: number; aspectRatio?: string; image?: string; callbackUrl?: string; idempotencyKey?: string; out?: string; download: boolean }) => {
      const { api, g } = client();
      const { id } = await api.submit(
        { model: o.model, prompt: o.prompt, duration: o.duration, aspect_ratio: o.aspectRatio, image_urls: o.image ? [o.image] : undefined, callback_url: o.callbackUrl },
        o.idempotencyKey,
      );
      const bar = progressBar(io, g);
      if (!g.json) io.stderr.write(`task ${id}\n`);
      const task = await follow(api, id, g.interval, (t) => bar.update(t));
      if (task.status === 'failed') {
        bar.stop();
        throw new TaskFailed(task);
      }
      let file: string | undefined;
      if (o.download) {
        file = o.out ?? `${id}.mp4`;
        await api.download(id, file, (received, total) => bar.downloading(received, total ?? task.video?.bytes));
      }
      bar.stop();
      if (g.json) print(JSON.stringify({ ...task, file: file ?? null }));
      else print(file ? `${basename(file)}: ${describeVideo(task)}` : `${id}: ${describeVideo(task)}`);
    });

  program
    .command('status')
    .description("show a task's status")
    .argument('<id>', 'task id')
    .action(async (id: string) => {
      const { api, g } = client();
      const task = await api.task(id);
      print(g.json ? JSON.stringify(task) : describeTask(task));
      if (task.status === 'failed') process.exitCode = EXIT.taskFailed;
    });

  program
    .command('list')
    .description('your tasks, newest first')
    .addOption(new Option('--limit <n>', 'how many').default(20).argParser(positiveInt('--limit')))
    .option('--after <id>', 'continue after this task id (the previous page\'s cursor)')
    .action(async (o: { limit: number; after?: string }) => {
      const { api, g } = client();
      const page = await api.list(o.limit, o.after);
      if (g.json) {
        print(JSON.stringify(page));
        return;
      }
      if (page.data.length === 0) print('no tasks');
      for (const t of page.data) print(describeTask(t));
      if (page.has_more) print(`more: vtg list --after ${page.next_cursor}`);
    });

  program
    .command('download')
    .description("download a finished task's video")
    .argument('<id>', 'task id')
    .option('--out <file>', 'where to write it (default: <id>.mp4)')
    .action(async (id: string, o: { out?: string }) => {
      const { api, g } = client();
      const file = o.out ?? `${id}.mp4`;
      const bytes = await api.download(id, file);
      print(g.json ? JSON.stringify({ id, file, bytes }) : `${file}: ${bytes} bytes`);
    });

  program
    .command('models')
    .description('the models this gateway offers, with their allowed values')
    .action(async () => {
      const { api, g } = client();
      const models = await api.models();
      if (g.json) {
        print(JSON.stringify(models));
        return;
      }
      for (const m of models)
        print(`${m.id}  durations ${m.durations.join('/')} s  ratios ${m.aspect_ratios.join(' ')}  images ≤${m.max_images}${m.characters ? '  characters' : ''}`);
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (error) {
    const json = program.opts<Globals>().json;
    const fail = (code: number, body: object, text: string) => {
      io.stderr.write(json ? `${JSON.stringify(body)}\n` : `vtg: ${text}\n`);
      return code;
    };
    if (error instanceof TaskFailed) return fail(EXIT.taskFailed, { error: error.task.error, task: error.task }, error.message);
    if (error instanceof GatewayError)
      return fail(EXIT.usage, { error: { status: error.status, code: error.code, message: error.message, param: error.param } }, `${error.message}${error.param ? ` (${error.param})` : ''}`);
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.exitCode === 0) return EXIT.ok;
      // commander printed its own message already, except for ours.
      if (error.code === 'vtg.config') return fail(EXIT.usage, { error: { code: 'usage', message: error.message } }, error.message);
      return EXIT.usage;
    }
    throw error;
  } finally {
    process.exitCode = undefined;
  }
}

/** Poll until the task ends; each answer goes to `onTask`. */
async function follow(api: GatewayClient, id: string, intervalMs: number, onTask: (t: TaskView) => void): Promise<TaskView> {
  for (;;) {
    const task = await api.task(id);
    onTask(task);
    if (task.status === 'succeeded' || task.status === 'failed') return task;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A bar on a terminal, one line per phase change elsewhere, nothing with --json. */
function progressBar(io: Io, g: Globals) {
  const tty = Boolean(io.stderr.isTTY) && !g.json;
  const bar = tty
    ? new SingleBar(
        {
        stream: io.stderr,
        format: ' {bar} {percentage}% | {phase} | {elapsed}s',
        barsize: Math.max(10, Math.min(40, (io.stderr.columns ?? 80) - 40)),
        hideCursor: true,
        clearOnComplete: false,
      },
      Presets.shades_classic,
    )
    : undefined;
  const started = Date.now();
  let lastPhase = '';
  let shown = false;
  const payload = (phase: string) => ({ phase, elapsed: Math.round((Date.now() - started) / 1000) });
  return {
    update(t: TaskView) {
      const phase = phaseOf(t);
      if (bar) {
        if (!shown) bar.start(100, 0, payload(phase));
        shown = true;
        bar.update(t.status === 'succeeded' ? 100 : t.progress, payload(phase));
      } else if (!g.json && phase !== lastPhase) {
        io.stderr.write(`${phase}${t.status === 'in_progress' ? ` ${t.progress}%` : ''}\n`);
      }
      lastPhase = phase;
    },
    downloading(received: number, total: number | undefined) {
      const text = `downloading ${(received / 1048576).toFixed(1)} MiB`;
      if (bar) bar.update(total ? Math.min(100, Math.round((received / total) * 100)) : 100, payload(text));
      else if (!g.json && lastPhase !== 'downloading') io.stderr.write('downloading\n');
      lastPhase = 'downloading';
    },
    stop() {
      if (bar && shown) bar.stop();
    },
  };
}

function describeVideo(t: TaskView): string {
  const v = t.video;
  if (!v) return t.status;
  const measured = v.duration_seconds !== undefined ? `, ${v.duration_seconds.toFixed(1)} s` : '';
  const size = v.width && v.height ? `, ${v.width}x${v.height}` : '';
  return `${v.bytes} bytes${measured}${size}, sha256 ${v.sha256}`;
}

function describeTask(t: TaskView): string {
  const age = Math.max(0, Math.round(Date.now() / 1000 - t.created_at));
  const state = t.status === 'in_progress' ? `${phaseOf(t)} ${t.progress}%` : t.status;
  const error = t.error ? `  ${t.error.code}: ${t.error.message}` : '';
  return `${t.id}  ${state.padEnd(14)} ${t.model}  ${t.duration}s ${t.aspect_ratio}  ${age}s ago${error}`;
}
