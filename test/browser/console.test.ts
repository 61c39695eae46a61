import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from '../integration/helpers';

/**
 * The console as a person uses it: Debian's Chromium driven by Playwright, by labels and
 * roles. Screenshots of each step are kept under test-artifacts/console/.
 */
const shots = join(process.cwd(), 'test-artifacts', 'console');
mkdirSync(shots, { recursive: true });

let h: Harness;
let browser: Browser;

beforeAll(async () => {
  h = await startHarness({ renderMs: 1500 });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
});
afterAll(async () => {
  await browser?.close();
  await h?.close();
});

async function openConsole(): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // A 404 for /admin/… is how a client key learns it is not an operator's: not an error of the page.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  await page.goto(`${h.gw.url}/console`);
  return { page, errors };
}

async function signIn(page: Page, key: string) {
  await page.getByLabel('API key').fill(key);
  await page.getByLabel('API key').press('Enter');
}

describe('the console', { timeout: 60_000 }, () => {
  it('signs in, creates a task, watches it succeed and plays its video', async () => {
    const { page, errors } = await openConsole();
    await signIn(page, h.gw.apiKey);
    await expect.poll(() => page.getByRole('heading', { name: 'New video' }).isVisible()).toBe(true);
    // The key lives in session storage only, never in the URL or local storage.
    expect(await page.evaluate("sessionStorage.getItem('vtg.apiKey')")).toBe(h.gw.apiKey);
    expect(await page.evaluate('localStorage.length')).toBe(0);
    expect(page.url()).not.toContain(h.gw.apiKey);

    await page.getByLabel('Model').selectOption('sora-2-pro');
    expect(await page.getByLabel('Duration (seconds)').locator('option').allTextContents()).toEqual(['10', '15', '25']);
    await page.getByLabel('Model').selectOption('sora-2');
    expect(await page.getByLabel('Duration (seconds)').locator('option').allTextContents()).toEqual(['10', '15']);
    await page.getByLabel('Prompt').fill('a paper boat on a puddle');
    await page.getByLabel('Aspect ratio').selectOption('9:16');
    await page.getByRole('button', { name: 'Create' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toMatch(/^Created task_/);
    await page.screenshot({ path: join(shots, '1-created.png'), fullPage: true });

    const row = page.getByRole('row', { name: /sora-2/ }).first();
    await expect.poll(() => row.textContent(), { timeout: 15_000 }).toMatch(/succeeded/);
    await row.click();
    const video = page.getByRole('region', { name: /^Task / }).locator('video');
    await expect.poll(() => video.isVisible(), { timeout: 10_000 }).toBe(true);
    const duration = await video.evaluate(
      // Runs in the page: the element is an HTMLVideoElement there.
      (v: any) =>
        new Promise<number>((resolve, reject) => {
          if (v.readyState >= 1) return resolve(v.duration);
          v.addEventListener('loadedmetadata', () => resolve(v.duration), { once: true });
          v.addEventListener('error', () => reject(new Error(`video error ${v.error?.code}: ${v.error?.message}`)), { once: true });
        }),
    );
    expect(duration).toBeGreaterThan(0);
    expect(await page.getByRole('definition').allTextContents()).toContain('a paper boat on a puddle');
    // The key's usage, as /v1/usage reports it: the totals, the limits in force, a row per model.
    const usage = (await (await h.api('/v1/usage')).json()) as { totals: { tasks: number; succeeded: number } };
    expect(usage.totals.succeeded).toBeGreaterThan(0);
    const panel = page.getByRole('region', { name: 'Usage this month' });
    await expect.poll(() => panel.textContent()).toContain(`${usage.totals.tasks} tasks (${usage.totals.succeeded} succeeded`);
    expect(await panel.textContent()).toMatch(/Limits — open tasks at once: no limit \(\d+ open\) · submits a minute: no limit/);
    await expect.poll(() => panel.getByRole('table').getByRole('row', { name: /sora-2/ }).first().textContent()).toMatch(/\$\d+\.\d\d/);
    await page.screenshot({ path: join(shots, '2-playing.png'), fullPage: true });
    expect(errors).toEqual([]);
  });

  it('shows the error of a failed task', async () => {
    const { page } = await openConsole();
    await signIn(page, h.gw.apiKey);
    await page.getByLabel('Prompt').fill('a storm at sea sim:fail');
    await page.getByRole('button', { name: 'Create' }).click();
    const row = page.getByRole('row', { name: /failed/ }).first();
    await expect.poll(() => row.isVisible(), { timeout: 15_000 }).toBe(true);
    await row.click();
    await expect.poll(() => page.locator('#details-error').textContent()).toMatch(/^Failed \(upstream_failed\): /);
    await page.screenshot({ path: join(shots, '3-failed.png'), fullPage: true });
  });

  it('says so when the key is wrong, and keeps nothing', async () => {
    const { page } = await openConsole();
    await signIn(page, 'vtg_not_a_key');
    await expect.poll(() => page.getByRole('alert').first().textContent()).toMatch(/That key was not accepted/);
    expect(await page.evaluate('sessionStorage.length')).toBe(0);
    expect(await page.getByRole('heading', { name: 'New video' }).isVisible()).toBe(false);
    await page.screenshot({ path: join(shots, '4-wrong-key.png'), fullPage: true });
  });

  it('refuses a create the model does not allow, with the gateway’s message', async () => {
    const { page } = await openConsole();
    await signIn(page, h.gw.apiKey);
    await page.getByLabel('Prompt').fill('   ');
    await page.getByRole('button', { name: 'Create' }).click();
    await expect.poll(() => page.locator('#create-error').textContent()).toMatch(/prompt/);
  });

  it('with an admin key: every key’s tasks, their route attempts, and upstream health', async () => {
    const admin = await h.gw.createKey('ops', { admin: true });
    const { id } = (await (await h.submit({ model: 'sora-2', prompt: 'made by a client key' })).json()) as { id: string };
    await h.waitForStatus(id, 'succeeded');
    const { page } = await openConsole();
    await signIn(page, admin);
    await expect.poll(() => page.getByRole('heading', { name: 'Operator view' }).isVisible()).toBe(true);
    await expect.poll(() => page.getByText('Signed in with an admin key: all tasks').isVisible()).toBe(true);
    const health = page.getByRole('table').filter({ has: page.getByRole('columnheader', { name: 'Circuit' }) });
    await expect.poll(() => health.getByRole('row', { name: /simulated/ }).textContent()).toMatch(/closed/);
    // Usage per key: the client key's row counts the task it made.
    const byKey = page.getByRole('table', { name: 'Usage by key this month' });
    const keys = (await (await h.api('/admin/usage', { key: admin })).json()) as { data: { key_id: string; succeeded: number }[] };
    const client = keys.data.find((k) => k.succeeded > 0)!;
    await expect.poll(() => byKey.getByRole('row', { name: new RegExp(client.key_id) }).textContent()).toContain(String(client.succeeded));
    // A client key's task is listed for the operator too.
    await page.getByRole('row', { name: new RegExp(id) }).click();
    await expect.poll(() => page.getByRole('list').filter({ has: page.getByRole('listitem') }).first().textContent()).toMatch(/simulated: submitted/);
    await page.screenshot({ path: join(shots, '5-admin.png'), fullPage: true });
  });

  it('is served with a Content-Security-Policy and no inline script', async () => {
    const response = await fetch(`${h.gw.url}/console`);
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await response.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect((await fetch(`${h.gw.url}/console/secrets.json`)).status).toBe(404);
  });
});
