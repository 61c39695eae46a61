import { ConfigError } from '../lambdas/shared/config';
import { DataDirError } from '../local/data-dir';
import { startLocalGateway } from '../local/gateway';

/**
 * `npm start`: the whole gateway on this machine. Settings (all optional): PORT,
 * LOCAL_API_KEY, SIM_RENDER_MS, DATA_DIR, RECONCILE_EVERY_MS (and, for crash drills,
 * LOCAL_CRASH_AFTER_VIDEO_STORED=1); any gateway configuration
 * variable (e.g. TASK_DEADLINE_SECONDS) is passed through.
 */
const port = Number(process.env.PORT ?? 3000);
const quiet = process.env.LOCAL_QUIET === '1';

const log = (msg: string, fields?: object) => {
  if (quiet) return;
  const detail = fields ? ` ${Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')}` : '';
  console.log(`${new Date().toISOString().slice(11, 23)} ${msg}${detail}`);
};

// Everything this process writes under the data directory (tables, videos, queues) is private.
process.umask(0o077);

const gateway = await startLocalGateway({
  dataDir: process.env.DATA_DIR || '.data',
  port,
  apiKey: process.env.LOCAL_API_KEY || undefined,
  renderMs: process.env.SIM_RENDER_MS ? Number(process.env.SIM_RENDER_MS) : undefined,
  reconcileEveryMs: process.env.RECONCILE_EVERY_MS ? Number(process.env.RECONCILE_EVERY_MS) : undefined,
  crashAfterVideoStored: process.env.LOCAL_CRASH_AFTER_VIDEO_STORED === '1',
  // With no catalog of the operator's, every dialect's simulator runs, each with a demo model.
  demo: !['UPSTREAMS', 'MODELS', 'MODEL_MAP', 'DISABLED_MODELS'].some((name) => process.env[name]),
  log,
}).catch((error: unknown) => {
  // A problem the person can fix (a bad file, a data directory in use, a full disk) is told in words.
  if (!(error instanceof DataDirError || error instanceof ConfigError)) throw error;
  console.error(`npm start: ${error.message}`);
  process.exit(1);
});

// Ctrl-C works from the moment the banner says so.
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

const keyNotice =
  gateway.localKey.status === 'replaced'
    ? `\nThe previous local key (id ${gateway.localKey.revokedId}) was revoked; this is a new one (kept in ${gateway.dataDir}/local-key.json).\n`
    : '';
const body = JSON.stringify({
  model: 'sora-2',
  prompt: 'The car moves forward at a high speed',
  aspect_ratio: '16:9',
  duration: 15,
});
/** Each model and the dialects of its routes, in order of preference (the operator's view: clients never see routes). */
const kindOf = new Map(gateway.catalog.upstreams.map((u) => [u.name, u.kind]));
const models = Object.values(gateway.catalog.models);
const width = Math.max(...models.map((m) => m.id.length));
const catalog = models.map((m) => `  ${m.id.padEnd(width)}  ${m.routes.map((r) => `${kindOf.get(r.upstream)} (${r.upstream})`).join(' → ')}`).join('\n');

console.log(`
Video Task Gateway is running on ${gateway.url}
  data:          ${gateway.dataDir} (tasks, videos, keys; kept across restarts)
  S3 events:     ${gateway.dataDir}/s3-events.jsonl
  upstream:      simulated, on ${gateway.upstream.url}${gateway.demo ? ' (and a simulator of every other dialect)' : ''}

Models, each with its routes in order: dialect (upstream name):
${catalog}

${
  gateway.localKey.status === 'revoked'
    ? `LOCAL_API_KEY (id ${gateway.localKey.id}) is revoked: requests with it answer 401.
Unset LOCAL_API_KEY to use the local key, or make one with: npm run keys -- create --name NAME`
    : `${keyNotice}Local API key: ${gateway.apiKey}
Webhook secret (verifies deliveries to your callback_url): ${gateway.webhookSecret}
Console:       ${gateway.url}/console (sign in with the key above)

Try it:
  curl -s ${gateway.url}/v1/videos/generations -H 'Authorization: Bearer ${gateway.apiKey}' -H 'Content-Type: application/json' -d '${body}'
then, with the id it returns:
  curl -s ${gateway.url}/v1/videos/generations/<id> -H 'Authorization: Bearer ${gateway.apiKey}'
  curl -sL ${gateway.url}/v1/videos/generations/<id>/content -H 'Authorization: Bearer ${gateway.apiKey}' -o video.mp4`
}

Ctrl-C stops.
`);

