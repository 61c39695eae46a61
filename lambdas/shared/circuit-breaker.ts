import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { logger } from './logger';
import { metric, record } from './metrics';
import { systemClock, type Clock } from './task-store';

/**
 * One circuit per upstream, kept in the task table (`pk = CIRCUIT#<upstream>`) so every
 * Lambda sees the same state. Closed: calls go through, failures are counted, a success
 * resets the count. Open after `failureThreshold` consecutive failures: calls are skipped
 * until `coolDownMs` has passed. Then half-open: one caller at a time takes the probe
 * lease; its success closes the circuit, its failure opens it for another cool-down.
 *
 * Only failures and recoveries write: a healthy upstream costs one read per call (or per
 * `readCacheMs`) and no write, so a busy upstream's item is not a write hot spot.
 */

export interface CircuitSettings {
  /** Consecutive failures that open the circuit. */
  failureThreshold: number;
  /** How long an open circuit skips its upstream before a probe is let through. */
  coolDownMs: number;
  /** How long a probe holds the half-open circuit before another caller may probe. */
  probeLeaseMs: number;
  /**
   * How long a read of the circuit serves this breaker's later calls (0: every call reads).
   * A worker that calls one upstream hundreds of times a second (a reconcile run over a
   * backlog) reads the item once per period instead of once per call; its own writes read
   * again at once, and another Lambda's are seen within the period.
   */
  readCacheMs?: number;
}

export type CircuitPhase = 'closed' | 'open' | 'half_open';

/** The circuit as the table holds it, for the operator's eyes. */
export interface CircuitState {
  upstream: string;
  phase: CircuitPhase;
  failures: number;
  openUntil?: number;
  openedAt?: number;
  lastError?: string;
  lastFailureAt?: number;
}

/** Leave to call an upstream; hand it back with the outcome. */
export interface CircuitPermit {
  upstream: string;
  /** This call is the half-open probe: its outcome closes or reopens the circuit. */
  probe: boolean;
  /** Failures counted when the permit was given: a success need not write when there were none. */
  failures: number;
}

export interface Circuits {
  /** A permit, or undefined while the upstream's circuit is open (or another caller holds the probe). */
  allow(upstream: string): Promise<CircuitPermit | undefined>;
  succeeded(permit: CircuitPermit): Promise<void>;
  failed(permit: CircuitPermit, reason: string): Promise<void>;
}

export const circuitKey = (upstream: string) => ({ pk: `CIRCUIT#${upstream}` });

interface CircuitItem {
  upstream?: string;
  circuit?: 'closed' | 'open';
  failures?: number;
  open_until?: number;
  opened_at?: number;
  probe_until?: number;
  last_error?: string;
  last_failure_at?: number;
}

export class CircuitBreaker implements Circuits {
  /** Reads still serving calls (`readCacheMs`): the read's time and its answer, shared while in flight. */
  private readonly reads = new Map<string, { at: number; item: Promise<CircuitItem | undefined> }>();

  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    private readonly settings: CircuitSettings,
    private readonly clock: Clock = systemClock,
  ) {}

  async state(upstream: string): Promise<CircuitState> {
    const item = await this.read(upstream);
    const now = this.clock.now();
    const open = item?.circuit === 'open';
    return {
      upstream,
      phase: !open ? 'closed' : (item.open_until ?? 0) > now ? 'open' : 'half_open',
      failures: item?.failures ?? 0,
      openUntil: open ? item.open_until : undefined,
      openedAt: open ? item.opened_at : undefined,
      lastError: item?.last_error,
      lastFailureAt: item?.last_failure_at,
    };
  }

  async allow(upstream: string): Promise<CircuitPermit | undefined> {
    const item = await this.cachedRead(upstream);
    const failures = item?.failures ?? 0;
    if (item?.circuit !== 'open') return { upstream, probe: false, failures };
    const now = this.clock.now();
    if ((item.open_until ?? 0) > now) return undefined;
    const took = await this.update(upstream, {
      UpdateExpression: 'SET probe_until = :lease',
      ConditionExpression: 'circuit = :open AND open_until <= :now AND (attribute_not_exists(probe_until) OR probe_until < :now)',
      ExpressionAttributeValues: { ':lease': now + this.settings.probeLeaseMs, ':open': 'open', ':now': now },
    });
    return took ? { upstream, probe: true, failures } : undefined;
  }

  async succeeded(permit: CircuitPermit): Promise<void> {
    if (!permit.probe && permit.failures === 0) return;
    const closed = await this.update(permit.upstream, {
      UpdateExpression: 'SET circuit = :closed, failures = :zero REMOVE open_until, probe_until, opened_at',
      // A success that began before another caller opened the circuit does not close it: only the probe does.
      ConditionExpression: permit.probe ? 'circuit = :open' : 'attribute_not_exists(circuit) OR circuit = :closed',
      ExpressionAttributeValues: permit.probe ? { ':closed': 'closed', ':zero': 0, ':open': 'open' } : { ':closed': 'closed', ':zero': 0 },
    });
    if (closed && permit.probe) logger.info('upstream circuit closed', { upstream: permit.upstream });
  }

  async failed(permit: CircuitPermit, reason: string): Promise<void> {
    const now = this.clock.now();
    const { coolDownMs, failureThreshold } = this.settings;
    const noted = { ':reason': reason.slice(0, 300), ':now': now, ':name': permit.upstream };
    if (permit.probe) {
      await this.update(permit.upstream, {
        UpdateExpression:
          'SET circuit = :open, open_until = :until, opened_at = :now, last_error = :reason, last_failure_at = :now, upstream = :name ADD failures :one REMOVE probe_until',
        ExpressionAttributeValues: { ...noted, ':one': 1, ':open': 'open', ':until': now + coolDownMs },
      });
      logger.warn('upstream circuit stays open: the probe failed', { upstream: permit.upstream, reason });
      return;
    }
    // The streak grows only from the count this caller saw: a success recorded since then
    // (which resets the count) breaks it, so scattered failures between successes never add
    // up to an open circuit. Concurrent failures of one wave count once; the next wave, which
    // sees the new count, counts again, so a dead upstream still opens after the threshold.
    const next = permit.failures + 1;
    const counted = await this.update(permit.upstream, {
      UpdateExpression: 'SET failures = :next, last_error = :reason, last_failure_at = :now, upstream = :name',
      ConditionExpression: permit.failures === 0 ? 'attribute_not_exists(failures) OR failures = :seen' : 'failures = :seen',
      ExpressionAttributeValues: { ...noted, ':next': next, ':seen': permit.failures },
    });
    if (!counted || next < failureThreshold) return;
    const opened = await this.update(permit.upstream, {
      UpdateExpression: 'SET circuit = :open, open_until = :until, opened_at = :now REMOVE probe_until',
      ConditionExpression: '(attribute_not_exists(circuit) OR circuit = :closed) AND failures >= :threshold',
      ExpressionAttributeValues: { ':open': 'open', ':closed': 'closed', ':until': now + coolDownMs, ':now': now, ':threshold': failureThreshold },
    });
    if (opened) {
      logger.warn('upstream circuit opened', { upstream: permit.upstream, failures: next, coolDownMs, reason });
      record(metric.circuitOpened, 1, undefined, { upstream: permit.upstream });
    }
  }

  private cachedRead(upstream: string): Promise<CircuitItem | undefined> {
    const ttl = this.settings.readCacheMs ?? 0;
    if (ttl <= 0) return this.read(upstream);
    const now = this.clock.now();
    const kept = this.reads.get(upstream);
    if (kept && now - kept.at < ttl) return kept.item;
    const item = this.read(upstream);
    this.reads.set(upstream, { at: now, item });
    item.catch(() => this.reads.delete(upstream));
    return item;
  }

  private async read(upstream: string): Promise<CircuitItem | undefined> {
    const { Item } = await this.db.send(new GetCommand({ TableName: this.table, Key: circuitKey(upstream), ConsistentRead: true }));
    return Item as CircuitItem | undefined;
  }

  /** One conditional update; false when its condition did not hold. */
  private async update(
    upstream: string,
    input: { UpdateExpression: string; ConditionExpression?: string; ExpressionAttributeValues: Record<string, unknown> },
  ): Promise<boolean> {
    try {
      await this.db.send(new UpdateCommand({ TableName: this.table, Key: circuitKey(upstream), ...input }));
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    } finally {
      // Whatever this breaker wrote, or found changed, its next call reads.
      this.reads.delete(upstream);
    }
  }
}
