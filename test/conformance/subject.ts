import type { ProviderKind } from '../../lambdas/shared/catalog';
import type { UpstreamProvider } from '../../lambdas/shared/providers/provider';
import type { SimFaults } from '../../local/simulated-upstream';

/**
 * What the provider conformance suite needs of one provider kind: its simulator on
 * loopback and an adapter configured for it. Adding a kind to the suite is adding one
 * subject to the list in `subjects.ts`.
 */
export interface SimulatorUnderTest {
  /** The base URL an upstream entry of this kind would carry (`baseUrl`). */
  url: string;
  /** The key the simulator takes (the entry's `apiKey`). */
  apiKey: string;
  /** Server-wide faults, in the vocabulary every simulator shares (`sim:` prompt tokens too). */
  setFaults(faults: SimFaults): void;
  /** Jobs the simulator has accepted so far (for "exactly one job"). */
  jobCount(): number;
  /** The ids of those jobs, in the order they were made. */
  jobIds(): string[];
  /** The sha256 of the video the simulator serves for an upstream job, for a byte-exact archive check. */
  expectedSha256(upstreamId: string): string;
  /**
   * The object a finished video's `videoUrl` names when it is not http(s) (`s3://` for a kind
   * that writes into our bucket: read from the embedded S3); http(s) URLs the suite fetches
   * itself, with the headers the archive would send (providers/upstream-keys.ts).
   */
  readVideo?(videoUrl: string): Promise<{ bytes: Buffer; contentType: string }>;
  close(): Promise<void>;
}

export interface ConformanceSubject {
  kind: ProviderKind;
  /** The upstream model id jobs carry (one the simulator takes). */
  model: string;
  /** The dialect calls back once, when the job ends (fal, Replicate's "completed" filter, OpenRouter), never with progress. */
  finalCallbackOnly?: boolean;
  /**
   * Starts the simulator on 127.0.0.1, port 0, rendering each job in `renderMs`, and an
   * adapter pointed at it whose calls give up after `timeoutMs`.
   */
  start(options: { timeoutMs: number; renderMs: number }): Promise<{ sim: SimulatorUnderTest; provider: UpstreamProvider }>;
}
