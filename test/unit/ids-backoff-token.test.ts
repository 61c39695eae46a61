import { describe, expect, it } from 'vitest';
import { backoffSeconds } from '../../lambdas/shared/backoff';
import { callbackToken, callbackUrl, verifyCallbackToken } from '../../lambdas/shared/callback-token';
import { isTaskId, newTaskId } from '../../lambdas/shared/ids';

const crockford = '0123456789abcdefghjkmnpqrstvwxyz';
const decodeTime = (id: string) => [...id.slice(5, 15)].reduce((ms, c) => ms * 32 + crockford.indexOf(c), 0);

/**
 * The id generator remembers the last millisecond it used (ids never go back in time), so
 * tests that pick their own clock readings pick ones later than anything used before.
 */
let future = Date.now() + 365 * 86400_000;
const later = (stepMs = 1000) => (future += stepMs);

describe('newTaskId', () => {
  it('is task_ and 26 lower-case Crockford base32 characters', () => {
    const id = newTaskId();
    expect(id).toMatch(/^task_[0-9a-hjkmnp-tv-z]{26}$/);
    expect(isTaskId(id)).toBe(true);
  });

  it('is URL-safe as it stands', () => {
    const id = newTaskId();
    expect(encodeURIComponent(id)).toBe(id);
  });

  it('carries its creation time in milliseconds', () => {
    const at = later();
    expect(decodeTime(newTaskId(at))).toBe(at);
  });

  it('does not repeat itself over many ids', () => {
    const ids = Array.from({ length: 20_000 }, () => newTaskId());
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('sorts in creation order across milliseconds', () => {
    const ids = Array.from({ length: 50 }, () => newTaskId(later(1 + Math.floor(Math.random() * 5000))));
    expect([...ids].sort()).toEqual(ids);
  });

  it('sorts in creation order within one millisecond', () => {
    const at = later();
    const ids = Array.from({ length: 1000 }, () => newTaskId(at));
    expect(new Set(ids).size).toBe(1000);
    expect([...ids].sort()).toEqual(ids);
    expect(ids.every((id) => decodeTime(id) === at)).toBe(true);
  });

  it('keeps sorting after the clock steps back', () => {
    const first = newTaskId(later());
    const afterStepBack = newTaskId(future - 5000);
    expect(afterStepBack > first).toBe(true);
  });

  it.each(['task_', 'task_0123456789abcdefghjkmnpqr', 'task_0123456789ABCDEFGHJKMNPQRS', 'task_0123456789abcdefghjkmnpqru', 'job_0123456789abcdefghjkmnpqrs'])(
    'isTaskId refuses %j',
    (s) => {
      expect(isTaskId(s)).toBe(false);
    },
  );
});

describe('backoffSeconds', () => {
  const middle = () => 0.5; // no jitter: exactly 100 %

  it('doubles with each attempt from the base', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffSeconds(n, { base: 30, cap: 10_000, random: middle }))).toEqual([30, 60, 120, 240, 480]);
  });

  it('treats attempt 0 as the first', () => {
    expect(backoffSeconds(0, { base: 30, cap: 900, random: middle })).toBe(30);
  });

  it('stops growing at the cap', () => {
    expect(backoffSeconds(6, { base: 30, cap: 900, random: middle })).toBe(900);
    expect(backoffSeconds(60, { base: 30, cap: 900, random: middle })).toBe(900);
    expect(backoffSeconds(5000, { base: 30, cap: 900, random: middle })).toBe(900);
  });

  it('spreads the wait over 75–125 % of the nominal value', () => {
    expect(backoffSeconds(3, { base: 100, cap: 10_000, random: () => 0 })).toBe(300);
    expect(backoffSeconds(3, { base: 100, cap: 10_000, random: () => 0.999_999 })).toBe(500);
    for (let i = 0; i < 500; i++) {
      const wait = backoffSeconds(3, { base: 100, cap: 10_000 });
      expect(wait).toBeGreaterThanOrEqual(300);
      expect(wait).toBeLessThanOrEqual(500);
    }
  });

  it('jitters around the cap too, never beyond 125 % of it', () => {
    expect(backoffSeconds(40, { base: 30, cap: 900, random: () => 0 })).toBe(675);
    expect(backoffSeconds(40, { base: 30, cap: 900, random: () => 0.999_999 })).toBe(1125);
  });

  it('answers whole seconds', () => {
    for (let i = 0; i < 100; i++) expect(Number.isInteger(backoffSeconds(2, { base: 7, cap: 900 }))).toBe(true);
  });

  it('does not retry together: waits for the same attempt differ', () => {
    const waits = new Set(Array.from({ length: 50 }, () => backoffSeconds(4, { base: 30, cap: 900 })));
    expect(waits.size).toBeGreaterThan(1);
  });

  it('never waits less than the Retry-After the other side sent', () => {
    expect(backoffSeconds(1, { base: 10, cap: 900, retryAfter: 120, random: () => 0.999_999 })).toBe(120);
    expect(backoffSeconds(1, { base: 10, cap: 900, retryAfter: 3600, random: middle })).toBe(3600);
  });

  it('waits its own backoff when that is longer than Retry-After', () => {
    expect(backoffSeconds(5, { base: 30, cap: 900, retryAfter: 5, random: middle })).toBe(480);
  });
});

describe('the callback token', () => {
  const secret = 'stack-callback-secret';
  const taskId = 'task_01jbz3p8m0a4x7q2r5t9v6w8yc';

  it('is URL-safe', () => {
    const token = callbackToken(secret, taskId);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it('is accepted for its own task', () => {
    expect(verifyCallbackToken(secret, taskId, callbackToken(secret, taskId))).toBe(true);
  });

  it('is refused when wrong', () => {
    const token = callbackToken(secret, taskId);
    const flipped = (token[0] === 'A' ? 'B' : 'A') + token.slice(1);
    const lastFlipped = token.slice(0, -1) + (token.at(-1) === 'A' ? 'B' : 'A');
    expect(verifyCallbackToken(secret, taskId, flipped)).toBe(false);
    expect(verifyCallbackToken(secret, taskId, lastFlipped)).toBe(false);
    expect(verifyCallbackToken(secret, taskId, 'x'.repeat(token.length))).toBe(false);
  });

  it('of another task is refused', () => {
    expect(verifyCallbackToken(secret, taskId, callbackToken(secret, 'task_01jbz3p8m0a4x7q2r5t9v6w8yd'))).toBe(false);
  });

  it('made under another secret is refused', () => {
    expect(verifyCallbackToken(secret, taskId, callbackToken('another-secret', taskId))).toBe(false);
  });

  it.each([
    ['empty', ''],
    ['shorter', 'abc'],
    ['longer', 'x'.repeat(200)],
    ['same characters, more bytes', 'é'.repeat(43)],
  ])('of a different length (%s) is refused without an error', (_what, presented) => {
    expect(() => verifyCallbackToken(secret, taskId, presented)).not.toThrow();
    expect(verifyCallbackToken(secret, taskId, presented)).toBe(false);
  });

  it('a valid token with something appended is refused', () => {
    expect(verifyCallbackToken(secret, taskId, `${callbackToken(secret, taskId)}=`)).toBe(false);
  });

  it('travels in the callback URL the upstream is given, and verifies from there', () => {
    const url = new URL(callbackUrl('https://api.example.com', secret, taskId));
    expect(url.origin + url.pathname).toBe(`https://api.example.com/callbacks/upstream/${taskId}`);
    expect(verifyCallbackToken(secret, taskId, url.searchParams.get('token')!)).toBe(true);
  });
});
