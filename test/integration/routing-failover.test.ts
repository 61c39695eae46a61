import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callbackToken } from '../../lambdas/shared/callback-token';
import { main as tasksCli } from '../../bin/tasks';
import { circuitKey } from '../../lambdas/shared/circuit-breaker';
import { falApp } from '../../lambdas/shared/providers/fal';
import { startFalUpstream, type FalUpstream } from '../../local/fal-upstream';
import type { JobSim } from '../../local/job-sim';
import { videoSha256 } from '../../local/mp4';
import { startOpenAIUpstream, type OpenAIUpstream } from '../../local/openai-upstream';
import { openrouterCost, startOpenRouterUpstream, type OpenRouterUpstream } from '../../local/openrouter-upstream';
import { startReplicateUpstream, type ReplicateUpstream } from '../../local/replicate-upstream';
import { startSimulatedUpstream, type SimulatedUpstream } from '../../local/simulated-upstream';
import { deadEndpoint, eventually, postCallback, reconcileUntil, sleep, startFaultStage, verifiedPayload, type Backstage, type FaultStage } from './fault-helpers';
import type { Harness } from './helpers';

/**
 * Failover between upstreams at run time, through the real local gateway over HTTP, with a
 * simulator per upstream: which upstream gets a job, how many jobs each makes, whose video is
 * archived, and that clients never learn who served them.
 */

const COOL_DOWN_SECONDS = 2;
const FIND_JOB_AFTER_SECONDS = 2;
const CIRCUIT_FAILURES = 4;
const RESELLER_KEY = 'sk-reseller-route';

let stage: FaultStage;
/** The gateway's UPSTREAMS, as configured. */
let upstreams: { name: string; [setting: string]: unknown }[];
let h: Harness;
let ops: Backstage;
let dead: { url: string };
const sims: Record<string, SimulatedUpstream> = {};
let resellOne: OpenAIUpstream;
let resellTwo: OpenAIUpstream;
let fal: FalUpstream;
let replicate: ReplicateUpstream;
let openrouter: OpenRouterUpstream;

/** Every answer a client got in this file (bodies and headers), for the white-label check. */
const clientSaw: string[] = [];

/** The upstream model id of each route, by upstream: none of them may reach a client. */
const upstreamModels = {
  'acme-east': 'acme-video-pro-7',
  'acme-west': 'acme-video-pro-7w',
  'nowhere-dc': 'nowhere-render-3',
  'circ-main': 'circ-render-main',
  'circ-spare': 'circ-render-spare',
  'down-one': 'down-render-one',
  'down-two': 'down-render-two',
  walled: 'walled-render-1',
  'resell-one': 'doubao-seedance-2-0-pro',
  'resell-two': 'wan2.7-t2v-turbo',
  falco: 'fal-ai/kling-video/v2.1/master/text-to-video',
  repli: 'kwaivgi/kling-v2.1',
  orouter: 'google/veo-3.1',
} as const;
type UpstreamName = keyof typeof upstreamModels;

const route = (upstream: UpstreamName) => ({ upstream, model: upstreamModels[upstream] });
const rules = { durations: [5, 10], aspectRatios: ['16:9', '9:16'], maxImages: 1, characters: false };

beforeAll(async () => {
  for (const name of ['acme-east', 'acme-west', 'circ-main', 'circ-spare', 'down-one', 'down-two', 'walled'])
    sims[name] = await startSimulatedUpstream({ renderMs: 150 });
  dead = await deadEndpoint();
  resellOne = await startOpenAIUpstream({ apiKey: RESELLER_KEY, renderMs: 150 });
  resellTwo = await startOpenAIUpstream({ apiKey: RESELLER_KEY, renderMs: 150 });
  fal = await startFalUpstream({ apiKey: 'fal-key', renderMs: 150 });
  replicate = await startReplicateUpstream({ apiKey: 'r8-key', renderMs: 150 });
  openrouter = await startOpenRouterUpstream({ apiKey: 'or-key', renderMs: 150 });
  const simulated = (name: string, url: string) => ({ name, kind: 'simulated', baseUrl: url, apiKey: 'sim-key' });
  upstreams = [
    // `walled` calls back, but its callbacks cannot reach the gateway: its entry asks for polling.
    ...Object.entries(sims).map(([name, sim]) => (name === 'walled' ? { ...simulated(name, sim.url), callsBack: false } : simulated(name, sim.url))),
    simulated('nowhere-dc', new URL(dead.url).origin),
    { name: 'resell-one', kind: 'openai', baseUrl: resellOne.url, apiKey: RESELLER_KEY, timeoutMs: 800 },
    { name: 'resell-two', kind: 'openai', baseUrl: resellTwo.url, apiKey: RESELLER_KEY },
    { name: 'falco', kind: 'fal', baseUrl: fal.url, apiKey: 'fal-key' },
    // Its webhooks' signing secret is read from its API, as in AWS.
    { name: 'repli', kind: 'replicate', baseUrl: replicate.url, apiKey: 'r8-key' },
    { name: 'orouter', kind: 'openrouter', baseUrl: openrouter.url, apiKey: 'or-key' },
  ];
  const models = {
    duo: { ...rules, routes: [route('acme-east'), route('acme-west')] },
    refusedfirst: { ...rules, routes: [route('nowhere-dc'), route('acme-west')] },
    careful: { ...rules, routes: [route('resell-one'), route('resell-two')] },
    circuit: { ...rules, routes: [route('circ-main'), route('circ-spare')] },
    patient: { ...rules, routes: [route('down-one'), route('down-two')] },
    polled: { ...rules, routes: [route('resell-two')] },
    quiet: { ...rules, routes: [route('walled')] },
    chain: { ...rules, routes: [route('falco'), route('repli'), route('orouter')] },
  };
  stage = await startFaultStage({
    renderMs: 150,
    env: {
      UPSTREAMS: JSON.stringify(upstreams),
      MODELS: JSON.stringify(models),
      UPSTREAM_TIMEOUT_MS: '2000',
      RESUBMIT_BASE_SECONDS: '1',
      CIRCUIT_FAILURES: String(CIRCUIT_FAILURES),
      CIRCUIT_COOL_DOWN_SECONDS: String(COOL_DOWN_SECONDS),
      FIND_JOB_AFTER_SECONDS: String(FIND_JOB_AFTER_SECONDS),
      AMBIGUOUS_WAIT_SECONDS: '60',
      POLL_FIRST_SECONDS: '1',
      POLL_MAX_SECONDS: '2',
      // Callbacks and the poll queue move tasks here; the reconciler runs only when a test says so.
      SILENT_AFTER_SECONDS: '3600',
    },
  });
  ({ h, ops } = stage);
});

afterAll(async () => {
  await stage?.close();
  for (const sim of [...Object.values(sims), resellOne, resellTwo, fal, replicate, openrouter]) await sim?.close();
});

/** A client call; what it answered is kept for the white-label check. */
async function client(path: string, init?: RequestInit): Promise<{ status: number; headers: Headers; body: any; text: string }> {
  const res = await h.api(path, init);
  const text = await res.text();
  clientSaw.push(JSON.stringify([...res.headers]), text);
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined, text };
}

async function submit(model: string, prompt: string, extra: Record<string, unknown> = {}) {
  const started = performance.now();
  const res = await client('/v1/videos/generations', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt, duration: 5, callback_url: stage.hooks.url, ...extra }),
  });
  return { ...res, ms: performance.now() - started };
}

async function submitted(model: string, prompt: string): Promise<{ id: string; ms: number }> {
  const res = await submit(model, prompt);
  expect(res.status, res.text).toBe(200);
  return { id: res.body.id as string, ms: res.ms };
}

const view = async (id: string) => (await client(`/v1/videos/generations/${id}`)).body;

const succeeded = (id: string, timeoutMs = 15_000) =>
  eventually(`task ${id} to succeed`, async () => {
    const v = await view(id);
    if (v.status === 'failed') throw new Error(`task ${id} failed: ${JSON.stringify(v.error)}`);
    return v.status === 'succeeded' ? v : undefined;
  }, timeoutMs);

/** `npm run tasks -- show ID` against this gateway: what the operator sees. */
async function operatorShow(id: string): Promise<string> {
  let out = '';
  const code = await tasksCli(['show', id, '--data-dir', h.dataDir], { out: (t) => void (out += t), err: (t) => void (out += t) });
  expect(code, out).toBe(0);
  return out;
}

/** The task's attempts as `upstream outcome` words, oldest first. */
const attemptsOf = async (id: string): Promise<string[]> => ((await ops.item(id)).attempts as { upstream: string; outcome: string }[]).map((a) => `${a.upstream} ${a.outcome}`);

/** The stored video is the bytes the serving upstream rendered: same sha256 in the view and in the bucket. */
async function archivedExactly(id: string, expectedSha256: string) {
  const v = await succeeded(id);
  expect(v.video.sha256).toBe(expectedSha256);
  expect(await ops.objectDigest(`videos/${id}.mp4`)).toEqual({ sha256: expectedSha256, bytes: v.video.bytes });
}

/** Jobs a duomi-dialect simulator made for `prompt`. */
const simJobs = (sim: SimulatedUpstream, prompt: string) => [...sim.tasks.values()].filter((t) => t.prompt === prompt);
const resellerJobs = (sim: OpenAIUpstream, prompt: string) => [...sim.jobs.values()].filter((j) => j.prompt === prompt);
const jobSimJobs = (sim: JobSim, prompt: string) => [...sim.jobs.values()].filter((j) => j.prompt === prompt);

describe('failover', () => {
  it('from an upstream answering 503: the next route at once, one job there, its video archived byte for byte', async () => {
    sims['acme-east']!.setFaults({ submit: '503' });
    const prompt = 'failover from a busy upstream';
    const { id, ms } = await submitted('duo', prompt);
    sims['acme-east']!.setFaults({});

    expect(await attemptsOf(id)).toEqual(['acme-east unavailable', 'acme-west submitted']);
    const [first, second] = (await ops.item(id)).attempts as { at: number }[];
    console.info(`failover 503 -> second route: ${second!.at - first!.at} ms between attempts, ${ms.toFixed(0)} ms client submit`);
    expect(simJobs(sims['acme-east']!, prompt)).toHaveLength(0);
    const jobs = simJobs(sims['acme-west']!, prompt);
    expect(jobs).toHaveLength(1);
    await archivedExactly(id, videoSha256({ taskId: jobs[0]!.id, ...jobs[0]!.video }));
    expect((await ops.item(id)).upstream).toBe('acme-west');
  });

  it('from an upstream that refuses connections: the next route at once', async () => {
    const prompt = 'failover from a host that is down';
    const { id, ms } = await submitted('refusedfirst', prompt);
    const item = await ops.item(id);
    expect(await attemptsOf(id)).toEqual(['nowhere-dc unavailable', 'acme-west submitted']);
    expect(item.attempts[0].message).toMatch(/^upstream unreachable: 127\.0\.0\.1:\d+ refused the connection$/);
    console.info(`failover connection refused -> second route: ${item.attempts[1].at - item.attempts[0].at} ms between attempts, ${ms.toFixed(0)} ms client submit`);
    const jobs = simJobs(sims['acme-west']!, prompt);
    expect(jobs).toHaveLength(1);
    await archivedExactly(id, videoSha256({ taskId: jobs[0]!.id, ...jobs[0]!.video }));
  });

  it('never after a content refusal: the task fails upstream_rejected and the second upstream gets nothing', async () => {
    const prompt = 'a refused prompt sim:submit=reject';
    const res = await submit('duo', prompt);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'upstream_rejected', message: expect.stringContaining('content policy') });
    const id = res.headers.get('x-task-id')!;
    expect(await view(id)).toMatchObject({ status: 'failed', error: { code: 'upstream_rejected' } });
    expect(await attemptsOf(id)).toEqual(['acme-east rejected']);
    expect(simJobs(sims['acme-west']!, prompt)).toHaveLength(0);
    expect(simJobs(sims['acme-east']!, prompt)).toHaveLength(0);
  });
});

describe('an ambiguous answer', () => {
  it('a dropped connection after the job was made: no other route; the job found at the first upstream is the task\'s', async () => {
    const prompt = 'a job made as the connection dropped sim:submit=accept-drop';
    const { id } = await submitted('careful', prompt);
    expect(await attemptsOf(id)).toEqual(['resell-one ambiguous']);
    expect((await view(id)).status).toBe('queued');
    // Before the gateway has asked the first upstream, nothing goes anywhere else.
    await h.gw.reconcileNow();
    expect(resellerJobs(resellTwo, prompt)).toHaveLength(0);

    await sleep(FIND_JOB_AFTER_SECONDS * 1000);
    await reconcileUntil(h, `${id} to be adopted`, async () => ((await ops.item(id)).state === 'queued' ? undefined : true));
    expect(await attemptsOf(id)).toEqual(['resell-one ambiguous', 'resell-one adopted']);
    const jobs = resellerJobs(resellOne, prompt);
    expect(jobs).toHaveLength(1);
    await archivedExactly(id, videoSha256({ taskId: jobs[0]!.id, ...jobs[0]!.video }));
    expect(resellerJobs(resellTwo, prompt)).toHaveLength(0);
    expect(resellOne.stats.listRequests).toBeGreaterThan(0);
  });

  it('a timeout: held at the first upstream until it is asked and holds no job, then the next route', async () => {
    resellOne.setFaults({ submit: 'stall' });
    const prompt = 'a submit that times out';
    const { id, ms } = await submitted('careful', prompt);
    expect(ms).toBeGreaterThanOrEqual(800);
    const item = await ops.item(id);
    expect(await attemptsOf(id)).toEqual(['resell-one ambiguous']);
    expect(item.attempts[0].message).toBe('upstream did not answer within 800 ms');
    const lists = resellOne.stats.listRequests;

    await h.gw.reconcileNow();
    expect(resellerJobs(resellTwo, prompt)).toHaveLength(0);
    expect(resellOne.stats.listRequests).toBe(lists);

    // The first upstream now certainly takes nothing; once it has been asked, the task moves on.
    resellOne.setFaults({ submit: '503' });
    await sleep(FIND_JOB_AFTER_SECONDS * 1000);
    await reconcileUntil(h, `${id} to leave the queue`, async () => ((await ops.item(id)).state === 'queued' ? undefined : true));
    resellOne.setFaults({});
    expect(await attemptsOf(id)).toEqual(['resell-one ambiguous', 'resell-one no_job', 'resell-one unavailable', 'resell-two submitted']);
    expect(resellOne.stats.listRequests).toBeGreaterThan(lists);
    expect(resellerJobs(resellOne, prompt)).toHaveLength(0);
    const jobs = resellerJobs(resellTwo, prompt);
    expect(jobs).toHaveLength(1);
    await archivedExactly(id, videoSha256({ taskId: jobs[0]!.id, ...jobs[0]!.video }));
  });
});

describe('the circuit breaker across routes', () => {
  it('opens after consecutive failures (the spare serves meanwhile), skips the upstream, and closes on a probe after the cool-down', async () => {
    const main = sims['circ-main']!;
    const spare = sims['circ-spare']!;
    main.setFaults({ submit: '503' });
    const ids: string[] = [];
    for (let i = 0; i < CIRCUIT_FAILURES; i++) ids.push((await submitted('circuit', `circuit ${i}`)).id);
    expect(await ops.raw(circuitKey('circ-main'))).toMatchObject({ circuit: 'open', failures: CIRCUIT_FAILURES });
    const received = main.stats.submitsReceived;
    expect(received).toBe(CIRCUIT_FAILURES);

    // While open: straight to the spare, no call to the main upstream.
    const skipped = (await submitted('circuit', 'circuit while open')).id;
    expect(main.stats.submitsReceived).toBe(received);
    expect(await attemptsOf(skipped)).toEqual(['circ-spare submitted']);

    main.setFaults({});
    await sleep(COOL_DOWN_SECONDS * 1000 + 100);
    const probed = (await submitted('circuit', 'circuit probe')).id;
    expect(await attemptsOf(probed)).toEqual(['circ-main submitted']);
    expect(await ops.raw(circuitKey('circ-main'))).toMatchObject({ circuit: 'closed', failures: 0 });

    for (const id of [...ids, skipped]) await succeeded(id);
    await succeeded(probed);
    expect(spare.tasks.size).toBe(CIRCUIT_FAILURES + 1);
    expect(simJobs(main, 'circuit probe')).toHaveLength(1);
  });
});

describe('every route down', () => {
  it('the task stays queued and is resubmitted with backoff; when one upstream recovers it takes the task before the deadline', async () => {
    const [one, two] = [sims['down-one']!, sims['down-two']!];
    one.setFaults({ submit: '503' });
    two.setFaults({ submit: '500' });
    const prompt = 'waits for any upstream';
    const { id } = await submitted('patient', prompt);
    expect(await view(id)).toMatchObject({ status: 'queued', error: null });
    expect(await attemptsOf(id)).toEqual(['down-one unavailable', 'down-two unavailable']);

    await reconcileUntil(h, `a second round for ${id}`, async () => ((await ops.item(id)).submit_attempts >= 2 ? true : undefined), 10_000, 200);
    expect((await view(id)).status).toBe('queued');
    expect(one.stats.submitsAccepted + two.stats.submitsAccepted).toBe(0);

    two.setFaults({});
    const done = await reconcileUntil(h, `${id} to be taken`, async () => ((await ops.item(id)).state === 'queued' ? undefined : true), 15_000, 200);
    expect(done).toBe(true);
    one.setFaults({});
    const attempts = await attemptsOf(id);
    expect(attempts.at(-1)).toBe('down-two submitted');
    expect(attempts.filter((a) => a === 'down-two unavailable').length).toBeGreaterThanOrEqual(2);
    expect(simJobs(one, prompt)).toHaveLength(0);
    const jobs = simJobs(two, prompt);
    expect(jobs).toHaveLength(1);
    await archivedExactly(id, videoSha256({ taskId: jobs[0]!.id, ...jobs[0]!.video }));
    const item = await ops.item(id);
    expect(item.completed_at).toBeLessThan(item.deadline_at);
  });
});

describe('a poll-only upstream', () => {
  it('an OpenAI-compatible task is archived with no callback at all: the poll queue asks, the key goes to the content endpoint', async () => {
    const prompt = 'learnt of by polling only';
    const polls = resellTwo.stats.statusRequests;
    const { id } = await submitted('polled', prompt);
    const jobs = resellerJobs(resellTwo, prompt);
    expect(jobs).toHaveLength(1);
    // The reconciler never runs here (hourly schedule, silent tasks polled after an hour): only the poll queue moves it.
    await archivedExactly(id, videoSha256({ taskId: jobs[0]!.id, ...jobs[0]!.video }));
    expect((await ops.item(id)).poll_count).toBeGreaterThanOrEqual(1);
    expect(resellTwo.stats.statusRequests).toBeGreaterThan(polls);
    expect(jobs[0]!.authorization).toBe(`Bearer ${RESELLER_KEY}`);
    expect(resellTwo.stats.videoDownloadsCompleted).toBeGreaterThanOrEqual(1);
  });

  it('a callback for a polled task, even with a valid token, is refused with 409 and changes nothing', async () => {
    const { id } = await submitted('polled', 'polled, then a forged word');
    const secret = (JSON.parse(readFileSync(join(h.dataDir, 'secrets.json'), 'utf8')) as { callbackSecret: string }).callbackSecret;
    const before = await ops.item(id);
    const res = await postCallback(h, id, callbackToken(secret, id), { id: 'x', status: 'failed', error: { message: 'forged' } });
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ error: { code: 'conflict', type: 'invalid_request_error', message: "this task's upstream does not call back; it is polled" } });
    // The poll queue may move the task on meanwhile, as the upstream says; the forged word moves nothing.
    const after = await ops.item(id);
    expect(after.state).not.toBe('failed');
    expect(after.error_code).toBeUndefined();
    expect(after.upstream_message ?? '').not.toContain('forged');
    expect(before.upstream_message ?? '').not.toContain('forged');
    await h.waitForStatus(id, 'succeeded');
  });
});

describe('an upstream whose entry says callsBack: false', () => {
  it('is polled on the poll queue: its task is archived though every callback it sends is lost', async () => {
    const prompt = 'callbacks lost on the way sim:callback=drop';
    const { id } = await submitted('quiet', prompt);
    const [job] = simJobs(sims.walled!, prompt);
    await archivedExactly(id, videoSha256({ taskId: job!.id, ...job!.video }));
    expect(job!.callbacks).toEqual([]);
    expect((await ops.item(id)).poll_count).toBeGreaterThanOrEqual(1);
  });
});

describe('fal, then Replicate, then OpenRouter', () => {
  it('fails over in route order, each archived from the upstream that took it, through its own callback', async () => {
    fal.sim.setFaults({ submit: '503' });
    replicate.sim.setFaults({ submit: '429', retryAfter: 1 });
    const toOpenRouter = (await submitted('chain', 'chain to the third')).id;
    replicate.sim.setFaults({});
    const toReplicate = (await submitted('chain', 'chain to the second')).id;
    fal.sim.setFaults({});
    const toFal = (await submitted('chain', 'chain to the first')).id;

    expect(await attemptsOf(toOpenRouter)).toEqual(['falco unavailable', 'repli unavailable', 'orouter submitted']);
    expect(await attemptsOf(toReplicate)).toEqual(['falco unavailable', 'repli submitted']);
    expect(await attemptsOf(toFal)).toEqual(['falco submitted']);

    const only = (sim: JobSim, prompt: string) => {
      const jobs = jobSimJobs(sim, prompt);
      expect(jobs).toHaveLength(1);
      return jobs[0]!;
    };
    const orJob = only(openrouter.sim, 'chain to the third');
    const repJob = only(replicate.sim, 'chain to the second');
    const falJob = only(fal.sim, 'chain to the first');
    await archivedExactly(toOpenRouter, videoSha256({ taskId: orJob.id, ...orJob.video }));
    await archivedExactly(toReplicate, videoSha256({ taskId: repJob.id, ...repJob.video }));
    await archivedExactly(toFal, videoSha256({ taskId: falJob.id, ...falJob.video }));
    expect((await ops.item(toFal)).upstream_id).toBe(`${falApp(falJob.model)}/requests/${falJob.id}`);
    // OpenRouter reports what the job cost (its simulator: 0.05 USD per second asked); it is kept for the usage records.
    expect((await ops.item(toOpenRouter)).upstream_cost).toBe(openrouterCost(orJob, 0.05));
    expect((await ops.item(toFal)).upstream_cost).toBeUndefined();
    const shown = await operatorShow(toOpenRouter);
    expect(shown).toMatch(/upstream +orouter \(route 2\)/);
    expect(shown).toContain(`upstream cost   ${openrouterCost(orJob, 0.05)} USD`);

    // One job per task in all: no upstream was paid twice.
    expect([fal.sim, replicate.sim, openrouter.sim].map((s) => [s.stats.submitsReceived, s.stats.submitsAccepted])).toEqual([
      [3, 1],
      [2, 1],
      [1, 1],
    ]);
    // Each learnt of its end by its own callback (signed, for Replicate), not by polling.
    for (const job of [orJob, repJob, falJob]) expect(job.callbacks).toHaveLength(1);
  });
});

describe('cancel', () => {
  const cancel = (id: string, key?: string) => client(`/v1/videos/generations/${id}/cancel`, { method: 'POST', ...(key ? { headers: { authorization: `Bearer ${key}` } } : {}) });

  it('a queued task is cancelled at once: failed with cancelled, its webhook sent, and no upstream takes it later', async () => {
    const [one, two] = [sims['down-one']!, sims['down-two']!];
    one.setFaults({ submit: '503' });
    two.setFaults({ submit: '503' });
    const prompt = 'cancelled while every route is down';
    const { id } = await submitted('patient', prompt);
    expect((await view(id)).status).toBe('queued');
    expect(await cancel(id, await h.gw.createKey('someone else'))).toMatchObject({ status: 404, body: { error: { code: 'not_found', type: 'invalid_request_error' } } });

    const res = await cancel(id);
    expect(res).toMatchObject({ status: 200, body: { id, status: 'failed', error: { code: 'cancelled', message: 'cancelled by the client' } } });
    one.setFaults({});
    two.setFaults({});
    await ops.setAttributes(id, { due_at: Date.now() - 1 });
    await h.gw.reconcileNow();
    expect(simJobs(one, prompt).length + simJobs(two, prompt).length).toBe(0);
    const [delivery] = await eventually('the cancelled task\'s webhook', () => {
      const found = stage.hooks.deliveries.filter((d) => (JSON.parse(d.body) as { id: string }).id === id);
      return found.length ? found : undefined;
    });
    expect(verifiedPayload(h.gw.webhookSecret, delivery!)).toMatchObject({ id, status: 'failed', error: { code: 'cancelled' } });
    expect(await cancel(id)).toMatchObject({ status: 409, body: { error: { code: 'not_cancellable', type: 'invalid_request_error', message: 'the task cannot be cancelled: it has failed' } } });
  });

  it('a rendering task reaches its upstream where the dialect can stop a job (fal), and is 409 where it cannot', async () => {
    const prompt = 'stopped while rendering sim:render=stall';
    const { id } = await submitted('chain', prompt);
    const [job] = jobSimJobs(fal.sim, prompt);
    expect(job).toBeDefined();
    const res = await cancel(id);
    expect(res.status, res.text).toBe(200);
    expect(res.body.status).toBe('failed');
    expect(job!.phase).toBe('canceled');
    expect(fal.sim.stats.cancels).toBe(1);

    const polledPrompt = 'cannot be stopped sim:render=stall';
    const rendering = (await submitted('polled', polledPrompt)).id;
    const refused = await cancel(rendering);
    expect(refused).toMatchObject({ status: 409, body: { error: { code: 'not_cancellable', type: 'invalid_request_error', message: 'this task is already rendering and its model cannot be stopped; it will finish' } } });
    expect((await view(rendering)).status).toBe('in_progress');
  });
});

describe('what operators see', () => {
  it('/admin/upstreams lists the health of every configured upstream, by name', async () => {
    const admin = await h.gw.createKey('routing operator', { admin: true });
    const res = await h.api('/admin/upstreams', { key: admin });
    expect(res.status).toBe(200);
    const names = ((await res.json()) as { data: { name: string }[] }).data.map((u) => u.name);
    expect(names.sort()).toEqual(upstreams.map((u) => u.name).sort());
  });
});

describe('white label', () => {
  it('no upstream name, host, model id or job id in any client answer or webhook', async () => {
    const models = await client('/v1/models');
    expect(models.status).toBe(200);
    const tasks = (await client('/v1/videos/generations?limit=100')).body.data as { id: string; status: string }[];
    const finished = tasks.filter((t) => t.status === 'succeeded' || t.status === 'failed');
    for (const t of tasks) await view(t.id);
    await client(`/v1/videos/tasks/${tasks[0]!.id}`);
    const deliveries = await eventually('a webhook for every finished task', () => {
      const ids = new Set(stage.hooks.deliveries.map((d) => (JSON.parse(d.body) as { id: string }).id));
      return finished.every((t) => ids.has(t.id)) ? stage.hooks.deliveries : undefined;
    });
    for (const d of deliveries) verifiedPayload(h.gw.webhookSecret, d);

    const hosts = [...Object.values(sims), resellOne, resellTwo, fal, replicate, openrouter].map((s) => new URL(s.url).host);
    hosts.push(new URL(dead.url).host);
    const items = await Promise.all(tasks.map((t) => ops.item(t.id)));
    const jobIds = items.map((i) => i.upstream_id as string | undefined).filter((j): j is string => !!j);
    expect(jobIds.length).toBeGreaterThan(10);
    const secrets = [...Object.keys(upstreamModels), ...Object.values(upstreamModels), ...hosts, ...jobIds, RESELLER_KEY];
    const seen = [...clientSaw, ...deliveries.map((d) => `${JSON.stringify(d.headers)}${d.body}`)];
    expect(seen.length).toBeGreaterThan(50);
    for (const text of seen) for (const secret of secrets) expect(text, `a client saw ${secret}`).not.toContain(secret);
  });
});
