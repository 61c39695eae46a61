import { startLocalGateway } from '../local/gateway';

/**
 * `npm start`: the whole gateway on this machine. Settings (all optional): PORT,
 * LOCAL_API_KEY, SIM_RENDER_MS, DATA_DIR, RECONCILE_EVERY_MS; any gateway configuration
 * variable (e.g. TASK_DEADLINE_SECONDS) is passed through.
 */
const port = Number(process.env.PORT ?? 3000);
const quiet = process.env.LOCAL_QUIET === '1';

const log = (msg: string, fields?: object) => {
  if (quiet) return;
  const detail = fields ? ` ${Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')}` : '';
  console.log(`${new Date().toISOString().slice(11, 23)} ${msg}${detail}`);
};

const gateway = await startLocalGateway({
  dataDir: process.env.DATA_DIR ?? '.data',
  port,
  apiKey: process.env.LOCAL_API_KEY || undefined,
  renderMs: process.env.SIM_RENDER_MS ? Number(process.env.SIM_RENDER_MS) : undefined,
  reconcileEveryMs: process.env.RECONCILE_EVERY_MS ? Number(process.env.RECONCILE_EVERY_MS) : undefined,
  log,
});

const body = JSON.stringify({
  model: 'sora-2',
  prompt: 'The car moves forward at a high speed',
  aspect_ratio: '16:9',
  duration: 15,
});
console.log(`
Video Task Gateway is running on ${gateway.url}
  data:          ${gateway.dataDir} (tasks, videos, keys; kept across restarts)
  S3 events:     ${gateway.dataDir}/s3-events.jsonl
  upstream:      simulated, on ${gateway.upstream.url}

Local API key: ${gateway.apiKey}
Webhook secret (verifies deliveries to your callback_url): ${gateway.webhookSecret}
Console:       ${gateway.url}/console (sign in with the key above)

Try it:
  curl -s ${gateway.url}/v1/videos/generations -H 'Authorization: Bearer ${gateway.apiKey}' -H 'Content-Type: application/json' -d '${body}'
then, with the id it returns:
  curl -s ${gateway.url}/v1/videos/generations/<id> -H 'Authorization: Bearer ${gateway.apiKey}'
  curl -sL ${gateway.url}/v1/videos/generations/<id>/content -H 'Authorization: Bearer ${gateway.apiKey}' -o video.mp4

Ctrl-C stops.
`);

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping...`);
  const force = setTimeout(() => process.exit(1), 10_000);
  force.unref();
  await gateway.stop();
  console.log('stopped; tasks and videos are kept in', gateway.dataDir);
  process.exit(0);
};
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
