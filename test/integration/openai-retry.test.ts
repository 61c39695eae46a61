import { InternalServerError } from '@aws-sdk/client-dynamodb';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../lambdas/shared/aws/dynamo';
import { startHarness, type Harness } from './helpers';

/**
 * A create that fails with a 5xx after the task may have been recorded must not be sent
 * again by the official SDK, which retries 5xx answers (twice by default) and sends no
 * idempotency key of its own: a retry would be a second task and a second paid render.
 * The gateway's own DynamoDB client (the one its handlers share in this process) answers
 * chosen requests with DynamoDB's 500 InternalServerError on every attempt, as a failing
 * table would; the SDK's own retries of it run as usual.
 */

interface Failing {
  /** Which DynamoDB operation (`UpdateItem`, `GetItem`, …) and request body to fail while armed. */
  operation: string;
  body: (text: string) => boolean;
}

const faults = { failing: undefined as Failing | undefined, failed: 0 };

function failChosenRequests() {
  dynamo().middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string>; body?: unknown };
      const operation = String(request.headers?.['x-amz-target'] ?? '').split('.')[1];
      const failing = faults.failing;
      if (failing && operation === failing.operation && failing.body(String(request.body))) {
        faults.failed++;
        throw new InternalServerError({ message: 'Internal server error', $metadata: { httpStatusCode: 500 } });
      }
      return next(args);
    },
    { step: 'deserialize', priority: 'high', name: 'testFailChosenRequests' },
  );
}

/** Run `work` with these requests failing. */
async function whileFailing<T>(failing: Failing, work: () => Promise<T>): Promise<T> {
  faults.failing = failing;
  try {
    return await work();
  } finally {
    faults.failing = undefined;
  }
}

let h: Harness;
/** Every request the SDK sends the gateway, as method and path. */
const sent: string[] = [];
let client: OpenAI;

beforeAll(async () => {
  process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
  h = await startHarness({ renderMs: 300 });
  failChosenRequests();
  // The SDK as an app runs it: its default retries, every request it makes counted.
  client = new OpenAI({
    baseURL: `${h.gw.url}/v1`,
    apiKey: h.gw.apiKey,
    fetch: (url, init) => {
      // Only what reaches the gateway (the SDK also fetches a data: URL to probe FormData support).
      if (String(url).startsWith(h.gw.url)) sent.push(`${init?.method ?? 'GET'} ${new URL(String(url)).pathname}`);
      return fetch(url, init);
    },
  });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

/** The caller's tasks with this prompt, as the seed dialect lists them. */
async function tasksWithPrompt(prompt: string): Promise<{ id: string; status: string }[]> {
  const list = (await (await h.api('/v1/videos/generations?limit=100')).json()) as { data: { id: string; prompt: string; status: string }[] };
  return list.data.filter((t) => t.prompt === prompt);
}

describe('a create that fails after the task may be recorded', () => {
  it('answers 5xx with x-should-retry: false, and the SDK sends it once: one task, one upstream job', async () => {
    const prompt = 'recorded, then the table failed';
    // The task's record is written; the write that marks it taken by the upstream fails.
    sent.length = 0;
    const error = await whileFailing({ operation: 'UpdateItem', body: (b) => b.includes('"submitted"') }, () =>
      client.videos.create({ model: 'sora-2', prompt }).catch((e: unknown) => e),
    );
    expect(faults.failed).toBeGreaterThan(0);
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect(error).toMatchObject({ status: 500, type: 'server_error', code: 'internal_error' });
    expect((error as InstanceType<typeof OpenAI.InternalServerError>).headers.get('x-should-retry')).toBe('false');
    expect(sent).toEqual(['POST /v1/videos']);

    const recorded = await tasksWithPrompt(prompt);
    expect(recorded).toHaveLength(1);
    expect([...h.gw.upstream.tasks.values()].filter((t) => t.prompt === prompt)).toHaveLength(1);
  });

  it('the same SDK does retry a 5xx that carries no such header (a read), so the count above is its choice', async () => {
    const { id } = await client.videos.create({ model: 'sora-2', prompt: 'read while the table fails' });
    sent.length = 0;
    const error = await whileFailing({ operation: 'GetItem', body: (b) => b.includes(`TASK#${id}`) }, () =>
      client.videos.retrieve(id).catch((e: unknown) => e),
    );
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect((error as InstanceType<typeof OpenAI.InternalServerError>).headers.get('x-should-retry')).toBeNull();
    expect(sent).toEqual([`GET /v1/videos/${id}`, `GET /v1/videos/${id}`, `GET /v1/videos/${id}`]);
    expect((await client.videos.retrieve(id)).id).toBe(id);
  });

  it('a seed-dialect submit failing the same way answers the JSON 500 (its clients send Idempotency-Key to retry safely)', async () => {
    const prompt = 'seed, recorded, then the table failed';
    const res = await whileFailing({ operation: 'UpdateItem', body: (b) => b.includes('"submitted"') }, () => h.submit({ model: 'sora-2', prompt }));
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: { code: 'internal_error', type: 'server_error', message: 'internal error' } });
    expect(await tasksWithPrompt(prompt)).toHaveLength(1);
  });
});
