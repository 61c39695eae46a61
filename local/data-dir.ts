import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import * as z from 'zod/mini';

/**
 * The local gateway's data directory: its files, read through a schema each, written whole
 * and private; the lock that keeps a second `npm start` (or `npm run keys` opening the data
 * itself) out while one process has it open; and the errors a person can act on.
 */

/** A problem with the data directory, in words for the person running `npm start`; never a stack trace. */
export class DataDirError extends Error {
  override readonly name = 'DataDirError';
}

/** How a file is shown in messages: relative to the working directory when that is shorter. */
export function displayPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && rel.length < file.length ? rel : file;
}

/** File-system failures in words: a full disk or a read-only one says so, whichever file it was. */
export function explainFsError(error: unknown, file: string, doing: string): DataDirError {
  const { code, message } = error as NodeJS.ErrnoException;
  const where = displayPath(file);
  if (code === 'ENOSPC' || code === 'EDQUOT')
    return new DataDirError(`no space left on the device holding ${where} while ${doing}: free some space and start again`);
  if (code === 'EACCES' || code === 'EPERM')
    return new DataDirError(`no permission to ${doing} ${where}: the data directory must belong to the user running the gateway`);
  if (code === 'EROFS') return new DataDirError(`${where} is on a read-only file system: choose another DATA_DIR`);
  return new DataDirError(`cannot ${doing} ${where}: ${message}`);
}

/**
 * Read a JSON file of the data directory and check it against `schema`. Missing: undefined.
 * Malformed (empty, not JSON, or the wrong shape): a `DataDirError` naming the file, the
 * problem and `remedy` (what deleting or fixing it does).
 */
export function readDataFile<S extends z.ZodMiniType>(file: string, schema: S, remedy: string): z.infer<S> | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw explainFsError(error, file, 'read');
  }
  const bad = (problem: string) => new DataDirError(`${displayPath(file)} is ${problem}. ${remedy}`);
  if (text.trim() === '') throw bad('empty');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw bad('not valid JSON');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'the file'}: ${i.message}`);
    throw bad(`not what the gateway wrote (${problems.join('; ')})`);
  }
  return parsed.data as z.infer<S>;
}

/** Write a file whole (a temporary file renamed into place, so a crash never leaves half of it), readable only by its owner. */
export function writeDataFile(file: string, value: unknown): void {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
    renameSync(temporary, file);
  } catch (error) {
    try {
      unlinkSync(temporary);
    } catch {
      // nothing was written
    }
    throw explainFsError(error, file, 'write');
  }
}

/** The file's value, or `make()`'s, written once. */
export function readOrCreateDataFile<S extends z.ZodMiniType>(file: string, schema: S, remedy: string, make: () => z.infer<S>): z.infer<S> {
  const existing = readDataFile(file, schema, remedy);
  if (existing !== undefined) return existing;
  const value = make();
  writeDataFile(file, value);
  return value;
}

/** Make the directory, or narrow an existing one, to 0700: its tables hold every key's webhook secret. */
export function makePrivateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
  } catch (error) {
    throw explainFsError(error, dir, 'create');
  }
}

/** Whether a process with this id exists (one of another user's counts). */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export const LOCK_FILE = 'gateway.lock';

const lockSchema = z.object({ pid: z.number(), by: z.string(), since: z.string() });

export interface DataDirLock {
  release(): void;
}

/** Data directories this process holds: the pid in the file cannot tell two holders in one process apart. */
const heldHere = new Set<string>();

/**
 * Take the data directory for this process, or say who has it. A lock left by a process
 * that is gone (killed, crashed) is taken over. `by` says who holds it, for the message
 * the next comer gets ("npm start", "npm run keys").
 */
export function lockDataDir(dataDirOption: string, by: string): DataDirLock {
  const dataDir = resolve(dataDirOption);
  const file = join(dataDir, LOCK_FILE);
  const inUse = (holder: string) =>
    new DataDirError(
      `the data directory ${displayPath(dataDir)} is in use by ${holder}. Stop that one first, or give this one another DATA_DIR.`,
    );
  if (heldHere.has(dataDir)) throw inUse('a gateway in this same process');
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw explainFsError(error, file, 'lock');
      let holder: z.infer<typeof lockSchema> | undefined;
      try {
        holder = lockSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
      } catch {
        holder = undefined; // half-written by a process that died while taking the lock
      }
      if (holder && holder.pid !== process.pid && processAlive(holder.pid)) throw inUse(`${holder.by} (pid ${holder.pid}, since ${holder.since})`);
      try {
        unlinkSync(file);
      } catch (unlinkError) {
        if ((unlinkError as NodeJS.ErrnoException).code !== 'ENOENT') throw explainFsError(unlinkError, file, 'remove the stale lock');
      }
      continue;
    }
    try {
      writeSync(fd, JSON.stringify({ pid: process.pid, by, since: new Date().toISOString() }));
    } catch (error) {
      unlinkSync(file);
      throw explainFsError(error, file, 'lock');
    } finally {
      closeSync(fd);
    }
    heldHere.add(dataDir);
    let released = false;
    return {
      release() {
        if (released) return;
        released = true;
        heldHere.delete(dataDir);
        try {
          unlinkSync(file);
        } catch {
          // the directory went away with the lock in it
        }
      },
    };
  }
}

/** A random token, for the identities and secrets kept in the data directory. */
export const token = (bytes = 24) => randomBytes(bytes).toString('base64url');
