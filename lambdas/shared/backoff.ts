/**
 * Exponential backoff with jitter: `base × 2^(attempt−1)`, capped, then spread over
 * 75–125 % so that tasks failing together do not retry together. A `Retry-After` the
 * other side sent is a floor.
 */
export function backoffSeconds(
  attempt: number,
  { base, cap, retryAfter, random = Math.random }: { base: number; cap: number; retryAfter?: number; random?: () => number },
): number {
  const exponential = Math.min(cap, base * 2 ** Math.max(0, attempt - 1));
  const jittered = exponential * (0.75 + random() * 0.5);
  return Math.max(retryAfter ?? 0, Math.round(jittered));
}
