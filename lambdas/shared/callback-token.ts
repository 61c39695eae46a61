import { createHmac, timingSafeEqual } from 'node:crypto';

/** The token in a task's upstream callback URL: an HMAC of the task id under the stack's secret. */
export const callbackToken = (secret: string, taskId: string) =>
  createHmac('sha256', secret).update(`callback:${taskId}`).digest('base64url');

/** Constant-time check of a presented token. */
export function verifyCallbackToken(secret: string, taskId: string, presented: string): boolean {
  const expected = Buffer.from(callbackToken(secret, taskId));
  const given = Buffer.from(presented);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export const callbackUrl = (baseUrl: string, secret: string, taskId: string) =>
  `${baseUrl}/callbacks/upstream/${encodeURIComponent(taskId)}?token=${callbackToken(secret, taskId)}`;
