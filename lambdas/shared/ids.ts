import { randomBytes } from 'node:crypto';

const alphabet = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford base32, lower case

function base32(bytes: Uint8Array, chars: number): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5 && out.length < chars) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out;
}

let lastTime = 0;
let lastRandom: Buffer = Buffer.alloc(10);

/**
 * A task id: `task_` and 26 characters, URL-safe, and sorting in creation order (a ULID:
 * 48 bits of milliseconds then 80 random bits, incremented within one millisecond so ids
 * made in the same process stay ordered).
 */
export function newTaskId(now = Date.now()): string {
  let random: Buffer;
  if (now <= lastTime) {
    random = Buffer.from(lastRandom);
    for (let i = random.length - 1; i >= 0; i--) {
      random[i] = (random[i]! + 1) & 0xff;
      if (random[i] !== 0) break;
    }
    now = lastTime;
  } else {
    random = randomBytes(10);
  }
  lastTime = now;
  lastRandom = random;
  let time = '';
  for (let rest = now, i = 0; i < 10; i++, rest = Math.floor(rest / 32)) time = alphabet[rest % 32] + time;
  return `task_${time}${base32(random, 16)}`;
}

/** When a task id was made (its first ten characters are the milliseconds); 0 for what is not a task id. */
export function taskIdTime(id: string): number {
  if (!isTaskId(id)) return 0;
  let ms = 0;
  for (const ch of id.slice(5, 15)) ms = ms * 32 + alphabet.indexOf(ch);
  return ms;
}

export const isTaskId = (s: string) => /^task_[0-9a-hjkmnp-tv-z]{26}$/.test(s);
