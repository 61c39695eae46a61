import type { ApiKeyStore } from '../api-keys';
import type { Circuits } from '../circuit-breaker';
import type { Config } from '../config';
import type { ArchiveJob, NotifyJob, PollJob } from '../contracts/jobs';
import type { IdempotencyStore } from '../idempotency';
import type { InputImages } from '../input-images';
import type { UpstreamRegistry } from '../providers';
import type { Resolver } from '../outbound';
import type { TaskStore } from '../task-store';
import type { UsageStore } from '../usage';
import type { VideoLinks } from '../video-links';
import type { VideoStore } from '../videos';

/**
 * Everything the gateway's core functions work with. Handlers build it from configuration;
 * tests and the local runtime may build it from anything that fits.
 */
export interface Gateway {
  config: Config;
  store: TaskStore;
  keys: ApiKeyStore;
  /** Limits and usage per key. */
  usage: UsageStore;
  idempotency: IdempotencyStore;
  /** Each upstream's circuit breaker, shared by every Lambda. */
  circuits: Circuits;
  /** Every configured upstream by name, each built on first use. */
  upstreams: UpstreamRegistry;
  videos: VideoLinks;
  /** Reference images uploaded with a create. */
  inputs: InputImages;
  archiver: VideoStore;
  queues: {
    archive(job: ArchiveJob, delaySeconds?: number): Promise<void>;
    notify(job: NotifyJob, delaySeconds?: number): Promise<void>;
    poll(job: PollJob, delaySeconds?: number): Promise<void>;
  };
  callbackSecret(): Promise<string>;
  /** Host names to addresses, for checking client URLs at submit: the system's DNS when absent (tests give their own). */
  resolve?: Resolver;
}

/** A core function states the collaborators it needs; a handler passes no more. */
export type Needs<K extends keyof Gateway> = Pick<Gateway, K>;
