import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { parseModels, parseUpstreams, type ProviderKind } from '../lambdas/shared/catalog';
import { bundledKindDefines, kindsFor } from '../lib/bundled-kinds';
import { buildConsole } from '../lib/console-assets';
import { bundleAliases, esmRequireBanner } from '../lib/gateway-function';
import { lambdaEntry, lambdaNames, type LambdaName } from '../lambdas/shared/routes';
import { benchDir, fixed, lastJson, median, pass, progress, projectRoot, quantile, ratio, runChild, table, tempDir } from './lib';

/**
 * Cold start: each Lambda bundled exactly as the stack bundles it, its size, and the time a
 * fresh Node process takes to import it, beside a bundle of only the AWS SDK clients that
 * Lambda needs. Then where the difference goes: bytes per package (esbuild metafile) and
 * import time per package (CPU profile mapped through the bundle's source map).
 */

/**
 * What NodejsFunction hands esbuild for `lib/gateway-function.ts`'s `bundling` block:
 * `--bundle --platform=node --format=esm --target=node22 --minify --sourcemap
 * --main-fields=module,main --banner:js=… --define:…`, no externals, no sources in the map
 * (`sourcesContent: false`). The stack does not export these, so they are replicated here; the
 * banner, the aliases and the provider-kind defines (`handlerDefines`) are the stack's own.
 */
export function stackBuildOptions(root: string): esbuild.BuildOptions {
  return {
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    mainFields: ['module', 'main'],
    banner: { js: esmRequireBanner },
    alias: bundleAliases(root),
    absWorkingDir: root,
    metafile: true,
    logLevel: 'warning',
  };
}

/**
 * The stage measured: the provider kinds of the README's worked example (two openai
 * resellers, duomi and Bedrock), the heaviest a stage of this issue bundles.
 */
export const benchKinds: readonly ProviderKind[] = ['duomi', 'openai', 'bedrock'];

/** What the stack hands esbuild as `define` for this Lambda: the kinds its work may load. */
export const handlerDefines = (name: LambdaName) => bundledKindDefines(kindsFor(name, benchKinds));

/** The SDK pieces the gateway uses, each with the commands it sends. */
const sdkParts = {
  dynamo: {
    imports: [
      "import { DynamoDBClient, ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';",
      "import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, ScanCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';",
    ],
    used: ['ConditionalCheckFailedException', 'GetCommand', 'PutCommand', 'QueryCommand', 'ScanCommand', 'UpdateCommand'],
    construct: 'DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } })',
  },
  secrets: {
    imports: ["import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';"],
    used: ['GetSecretValueCommand'],
    construct: 'new SecretsManagerClient({})',
  },
  s3Presign: {
    imports: [
      "import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';",
      "import { getSignedUrl } from '@aws-sdk/s3-request-presigner';",
    ],
    used: ['GetObjectCommand', 'getSignedUrl'],
    construct: 'new S3Client({})',
  },
  // Submit: an uploaded reference image stored and presigned for the upstream, a cancelled task's video deleted.
  s3Inputs: {
    imports: [
      "import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';",
      "import { getSignedUrl } from '@aws-sdk/s3-request-presigner';",
    ],
    used: ['DeleteObjectCommand', 'GetObjectCommand', 'PutObjectCommand', 'getSignedUrl'],
    construct: 'new S3Client({})',
  },
  // The archive: multipart uploads, the HeadObject of a resumed attempt, and the copy of Bedrock's output inside S3.
  s3Upload: {
    imports: [
      "import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, UploadPartCommand, UploadPartCopyCommand } from '@aws-sdk/client-s3';",
      "import { Upload } from '@aws-sdk/lib-storage';",
    ],
    used: [
      'Upload',
      'AbortMultipartUploadCommand',
      'CompleteMultipartUploadCommand',
      'CopyObjectCommand',
      'CreateMultipartUploadCommand',
      'DeleteObjectCommand',
      'GetObjectCommand',
      'HeadObjectCommand',
      'PutObjectCommand',
      'UploadPartCommand',
      'UploadPartCopyCommand',
    ],
    construct: 'new S3Client({})',
  },
  sqs: {
    imports: ["import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';"],
    used: ['SendMessageCommand'],
    construct: 'new SQSClient({})',
  },
  bedrock: {
    imports: [
      "import { BedrockRuntimeClient, GetAsyncInvokeCommand, ListAsyncInvokesCommand, StartAsyncInvokeCommand } from '@aws-sdk/client-bedrock-runtime';",
    ],
    used: ['GetAsyncInvokeCommand', 'ListAsyncInvokesCommand', 'StartAsyncInvokeCommand'],
    construct: "new BedrockRuntimeClient({ region: 'us-west-2' })",
  },
} as const;
type SdkPart = keyof typeof sdkParts;

/**
 * The SDK clients each Lambda's code uses: `lambdas/<name>/handler.ts` and the parts it
 * composes. Secrets Manager holds the callback HMAC secret and the upstream keys
 * (`aws/secrets.ts`; the archive sends a key to an upstream's own content URL); SQS carries
 * archive and notify jobs (`afterFinish` sends a notify job when the upstream refuses a task
 * at submit); the Bedrock runtime client is in the Lambdas that start and read invocations
 * (`kindsFor`). `checkBaseline` fails the run when a handler bundles a client its list lacks,
 * or the other way round.
 */
const withBedrock = (name: LambdaName): SdkPart[] => (kindsFor(name, benchKinds).includes('bedrock') ? ['bedrock'] : []);
export const baselineClients: Record<LambdaName, SdkPart[]> = {
  submit: ['dynamo', 's3Inputs', 'secrets', 'sqs', ...withBedrock('submit')],
  query: ['dynamo', 's3Presign'],
  callback: ['dynamo', 'secrets', 'sqs', ...withBedrock('callback')],
  archive: ['dynamo', 's3Upload', 'secrets', 'sqs', ...withBedrock('archive')],
  notify: ['dynamo', 's3Presign', 'sqs'],
  // Reconcile signs a fresh link to a resubmitted task's uploaded image.
  reconcile: ['dynamo', 's3Presign', 'secrets', 'sqs', ...withBedrock('reconcile')],
  poll: ['dynamo', 'secrets', 'sqs', ...withBedrock('poll')],
  console: [],
};

/** A module that imports the SDK clients (and the commands sent with them) and constructs them. */
export function baselineSource(parts: readonly SdkPart[]): string {
  const imports = [...new Set(parts.flatMap((p) => sdkParts[p].imports))];
  const used = [...new Set(parts.flatMap((p) => sdkParts[p].used))];
  return [
    ...imports,
    `export const used = [${used.join(', ')}];`,
    `export function construct() {`,
    `  return [${parts.map((p) => sdkParts[p].construct).join(', ')}];`,
    `}`,
    '',
  ].join('\n');
}

/** The environment a handler reads (and checks) when it loads. */
export const handlerEnv: Record<string, string> = {
  TABLE_NAME: 'video-task-gateway',
  BUCKET_NAME: 'video-task-gateway-videos',
  ARCHIVE_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/archive',
  NOTIFY_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/notify',
  POLL_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/poll',
  PUBLIC_BASE_URL: 'https://api.example.com',
  // The measured stage's upstreams (benchKinds); keys as local values, which no import reads.
  UPSTREAMS: JSON.stringify([
    { name: 'reseller-a', kind: 'openai', baseUrl: 'https://api.reseller-a.example/v1', apiKey: 'bench-key' },
    { name: 'duomi', kind: 'duomi', baseUrl: 'https://duomiapi.com', apiKey: 'bench-key' },
    { name: 'aws', kind: 'bedrock', region: 'us-west-2' },
  ]),
  MODELS: JSON.stringify({
    'seedance-2.0': { durations: [5, 10], routes: [{ upstream: 'reseller-a', model: 'doubao-seedance-2-0-pro' }] },
    'ray-2': { durations: [5, 9], maxImages: 0, routes: [{ upstream: 'aws', model: 'luma.ray-v2:0' }] },
    'sora-2': { routes: [{ upstream: 'duomi', model: 'sora-2' }] },
  }),
  CALLBACK_SECRET: 'bench-callback-secret',
  AWS_REGION: 'us-east-1',
  // The SDK warns once on Node < 22 when a client is made; Lambda's nodejs22.x never does.
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

/** How the stack starts Node (`NODE_OPTIONS` of every function), and plain Node for comparison. */
export const nodeModes = {
  deployed: '--enable-source-maps',
  plain: '',
} as const;
type NodeMode = keyof typeof nodeModes;

interface Bundle {
  id: string;
  /** A control is a byte-identical copy of a baseline, timed as a handler would be: the instrument's own error. */
  kind: 'handler' | 'baseline' | 'control';
  name: LambdaName;
  file: string;
  bytes: number;
  mapBytes: number;
  /** Bytes in the output per source file (esbuild metafile). */
  inputs: Record<string, number>;
}

async function build(
  root: string,
  outDir: string,
  kind: Bundle['kind'],
  name: LambdaName,
  extra: esbuild.BuildOptions = {},
): Promise<Bundle> {
  const id = `${kind}-${name}`;
  const outfile = join(outDir, id, 'index.mjs');
  const input: esbuild.BuildOptions =
    kind === 'handler'
      ? { entryPoints: [join(root, lambdaEntry(name))], define: handlerDefines(name) }
      : { stdin: { contents: baselineSource(baselineClients[name]), resolveDir: root, sourcefile: `baseline-${name}.ts`, loader: 'ts' } };
  const result = await esbuild.build({ ...stackBuildOptions(root), ...input, outfile, ...extra });
  // The console's files beside its bundle, as the stack places them (read with the first request for each).
  if (kind === 'handler' && name === 'console') buildConsole(root, join(dirname(outfile), 'console'), parseModels(handlerEnv.MODELS!, parseUpstreams(handlerEnv.UPSTREAMS!)));
  const output = Object.entries(result.metafile!.outputs).find(([file]) => file.endsWith('index.mjs'))![1];
  const inputs = Object.fromEntries(Object.entries(output.inputs).map(([file, i]) => [file, i.bytesInOutput]));
  return { id, kind, name, file: outfile, bytes: statSync(outfile).size, mapBytes: statSync(`${outfile}.map`).size, inputs };
}

/** A byte-identical copy of `bundle` (and its source map) in `dir`. */
function copyBundle(bundle: Bundle, dir: string): Bundle {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'index.mjs');
  copyFileSync(bundle.file, file);
  copyFileSync(`${bundle.file}.map`, `${file}.map`);
  return { ...bundle, id: `control-${bundle.name}`, kind: 'control', file };
}

/** Lets a diagnostic build record every AWS SDK client constructed (all extend smithy's Client). */
const clientProbe: esbuild.Plugin = {
  name: 'sdk-client-probe',
  setup(b) {
    b.onLoad({ filter: /smithy-client[\\/]client\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const probed = source.replace(
        'constructor(config) {',
        'constructor(config) { (globalThis.__benchSdkClients ??= []).push(new.target.name);',
      );
      if (probed === source) throw new Error(`the client probe found no constructor in ${args.path}`);
      return { contents: probed, loader: 'js' };
    });
  },
};

/** The AWS SDK packages that stand for a service client or its helpers (what `sdkParts` import). */
const sdkClientPackage = /^@aws-sdk\/(client-[\w-]+|lib-[\w-]+|s3-request-presigner)$/;

function sdkClientPackages(bundle: Bundle): string[] {
  const packages = Object.entries(bundle.inputs)
    .filter(([, bytes]) => bytes > 0)
    .map(([file]) => packageOf(file))
    .filter((p) => sdkClientPackage.test(p));
  return [...new Set(packages)].sort();
}

/** A baseline must bundle the same SDK clients as its handler, or the ratio compares unlike things. */
function checkBaseline(handler: Bundle, baseline: Bundle): void {
  const inHandler = sdkClientPackages(handler);
  const inBaseline = sdkClientPackages(baseline);
  const missing = inHandler.filter((p) => !inBaseline.includes(p));
  const unused = inBaseline.filter((p) => !inHandler.includes(p));
  if (missing.length || unused.length)
    throw new Error(
      `the ${handler.name} baseline does not match its handler's SDK clients ` +
        `(handler bundles ${inHandler.join(', ')}; baseline lacks ${missing.join(', ') || 'nothing'}, ` +
        `has unused ${unused.join(', ') || 'nothing'}): fix baselineClients in bench/coldstart.ts`,
    );
}

export function packageOf(source: string): string {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(source);
  return m ? m[1]! : 'our code';
}

/** Packages folded into the family that brings them in. */
export function groupOf(pkg: string): string {
  if (/^@aws-sdk\/|^@smithy\/|^@aws-crypto\/|^@aws\/|^(tslib|fast-xml-parser|strnum|mnemonist|obliterator|bowser|uuid)$/.test(pkg))
    return 'AWS SDK';
  if (pkg.startsWith('@aws-lambda-powertools/')) return '@aws-lambda-powertools';
  if (pkg.startsWith('@middy/')) return '@middy';
  if (/^(standardwebhooks|fast-sha256|@stablelib\/.*)$/.test(pkg)) return 'standardwebhooks';
  if (pkg === 'zod' || pkg === 'json5' || pkg === 'our code') return pkg;
  return 'other';
}

function bytesBy(bundle: Bundle, key: (pkg: string) => string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [file, bytes] of Object.entries(bundle.inputs)) {
    const k = key(packageOf(file));
    out.set(k, (out.get(k) ?? 0) + bytes);
  }
  return out;
}

interface ImportSample {
  importMs: number;
  importCpuMs: number;
  constructMs: number;
  constructCpuMs: number;
  importStartUs: number;
  importEndUs: number;
  /** End of the baseline's construct() (the import's end when nothing is constructed). */
  constructEndUs: number;
  clientsAtImport: string[] | null;
}

const runnerPath = join(benchDir, 'import-once.mjs');

function importEnv(mode: NodeMode): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...handlerEnv };
  if (nodeModes[mode]) env.NODE_OPTIONS = nodeModes[mode];
  return env;
}

async function importOnce(bundle: Bundle, mode: NodeMode, extraArgs: string[] = []): Promise<ImportSample> {
  const args = [...extraArgs, runnerPath, bundle.file, ...(bundle.kind === 'handler' ? [] : ['construct'])];
  const result = await runChild(process.execPath, args, { env: importEnv(mode), timeoutMs: 60_000 });
  if (result.code !== 0) throw new Error(`importing ${bundle.id} failed (exit ${result.code}):\n${result.stderr}`);
  if (result.stderr.trim() !== '' && !extraArgs.length) progress(`${bundle.id} wrote to stderr: ${result.stderr.trim().slice(0, 300)}`);
  return lastJson<ImportSample>(result, `import of ${bundle.id}`);
}

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/**
 * Self time spent during the import (and a baseline's construct()), by where the running
 * code comes from: the package (via the bundle's source map), Node's source-map support,
 * Node's module loader, V8 ((program): mostly parsing and compiling the bundle) or the
 * garbage collector.
 */
function attributeProfile(profile: CpuProfile, bundle: Bundle, map: SourceMap, window: ImportSample): Map<string, number> {
  const bundleUrl = pathToFileURL(bundle.file).href;
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const memo = new Map<number, string>();
  const categoryOf = (id: number): string => {
    const cached = memo.get(id);
    if (cached !== undefined) return cached;
    const { callFrame: f } = byId.get(id)!;
    let category: string;
    if (f.functionName === '(garbage collector)') category = 'V8: garbage collection';
    else if (f.functionName === '(program)') category = 'V8: (program)';
    else if (f.functionName === 'compileSourceTextModule') category = 'V8: parse + compile the bundle';
    else if (f.functionName === '(idle)' || f.functionName === '(root)') category = 'idle';
    else if (f.url === bundleUrl) {
      const entry = map.findEntry(f.lineNumber, f.columnNumber) as { originalSource?: string };
      category = entry.originalSource ? packageOf(entry.originalSource) : 'bundle (top level / unmapped)';
    } else if (f.url.startsWith('node:internal/source_map')) category = 'Node: source maps (--enable-source-maps)';
    else if (f.url.startsWith('node:')) category = 'Node: loader, file reads, other internals';
    else if (f.url === '') {
      const up = parent.get(id);
      category = up === undefined ? 'V8: native' : categoryOf(up);
    } else category = 'other';
    memo.set(id, category);
    return category;
  };

  const out = new Map<string, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]!;
    const next = profile.timeDeltas[i + 1] ?? 0;
    // A handler builds its clients while it loads, a baseline in construct(): both are counted, as in the timed runs.
    if (t < window.importStartUs || t > window.constructEndUs) continue;
    const category = categoryOf(profile.samples[i]!);
    if (category === 'idle') continue;
    out.set(category, (out.get(category) ?? 0) + next / 1000);
  }
  return out;
}

async function profileImports(bundle: Bundle, runs: number, dir: string): Promise<Map<string, number>> {
  const map = new SourceMap(JSON.parse(readFileSync(`${bundle.file}.map`, 'utf8')) as SourceMapPayload);
  const perRun: Map<string, number>[] = [];
  for (let i = 0; i < runs; i++) {
    const profDir = join(dir, `${bundle.id}-${i}`);
    mkdirSync(profDir, { recursive: true });
    const sample = await importOnce(bundle, 'deployed', ['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=100']);
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'))!;
    perRun.push(attributeProfile(JSON.parse(readFileSync(join(profDir, file), 'utf8')) as CpuProfile, bundle, map, sample));
    rmSync(profDir, { recursive: true, force: true });
  }
  const categories = new Set(perRun.flatMap((m) => [...m.keys()]));
  return new Map([...categories].map((c) => [c, median(perRun.map((m) => m.get(c) ?? 0))]));
}

export interface ColdStartOptions {
  root?: string;
  /** Timed imports per bundle and Node mode (≥ 10). */
  runs?: number;
  /** Profiled imports per bundle. */
  profileRuns?: number;
  handlers?: readonly LambdaName[];
  /** Also time imports without --enable-source-maps. */
  plainMode?: boolean;
}

/** The median of per-round ratios, with its quartiles. */
export interface Spread {
  median: number;
  low: number;
  high: number;
}

export interface ColdStart {
  rows: ColdStartRow[];
  /** A baseline timed against a byte-identical copy of itself, in the same rounds: what the instrument cannot tell apart. */
  control: { name: LambdaName; ratio: Partial<Record<NodeMode, Spread>> };
}

export interface ColdStartRow {
  name: LambdaName;
  bytes: number;
  baselineBytes: number;
  mapBytes: number;
  /** Wall time of the import (baseline: import + construct). */
  importMs: Record<NodeMode, number>;
  baselineMs: Record<NodeMode, number>;
  /** Handler over baseline, round by round (each round imports the two one after the other). */
  pairRatio: Partial<Record<NodeMode, Spread>>;
  /** CPU time (all threads) of the same; steadier when the machine is busy. */
  importCpuMs: Record<NodeMode, number>;
  baselineCpuMs: Record<NodeMode, number>;
  baselineConstructMs: number;
  clientsAtImport: string[];
  bytesByPackage: Map<string, number>;
  baselineBytesByPackage: Map<string, number>;
  timeByCategory: Map<string, number>;
  baselineTimeByCategory: Map<string, number>;
}

export async function measureColdStart(options: ColdStartOptions = {}): Promise<ColdStart> {
  const root = options.root ?? projectRoot;
  const runs = Math.max(10, options.runs ?? 11);
  const handlers = options.handlers ?? lambdaNames;
  const modes: NodeMode[] = options.plainMode === false ? ['deployed'] : ['deployed', 'plain'];
  const tmp = tempDir('coldstart');
  try {
    progress(`cold start: bundling ${handlers.length} handlers and their baselines with the stack's esbuild options`);
    const bundles: Bundle[] = [];
    for (const name of handlers) {
      const handler = await build(root, tmp.path, 'handler', name);
      const baseline = await build(root, tmp.path, 'baseline', name);
      checkBaseline(handler, baseline);
      bundles.push(handler, baseline);
    }
    const controlled = bundles.find((b) => b.kind === 'baseline' && b.name === (handlers.includes('callback') ? 'callback' : handlers[0]))!;
    const control = copyBundle(controlled, join(tmp.path, `control-${controlled.name}`));
    bundles.splice(bundles.indexOf(controlled) + 1, 0, control);

    // Which SDK clients a handler constructs while it loads (none, if construction is lazy).
    const clientsAtImport = new Map<LambdaName, string[]>();
    for (const name of handlers) {
      const probe = await build(root, join(tmp.path, 'probe'), 'handler', name, { plugins: [clientProbe], keepNames: true });
      clientsAtImport.set(name, (await importOnce(probe, 'plain')).clientsAtImport ?? []);
    }

    // Interleaved, so drift in machine load falls on handlers and baselines alike.
    const samples = new Map<string, ImportSample[]>();
    for (const mode of modes) {
      progress(`cold start: ${runs} imports of each of ${bundles.length} bundles, NODE_OPTIONS='${nodeModes[mode]}'`);
      for (let run = 0; run < runs; run++) {
        const order = run % 2 === 0 ? bundles : [...bundles].reverse();
        for (const bundle of order) {
          const key = `${mode}:${bundle.id}`;
          samples.set(key, [...(samples.get(key) ?? []), await importOnce(bundle, mode)]);
        }
      }
    }
    const total = (s: ImportSample) => s.importMs + s.constructMs;
    const ms = (mode: NodeMode, b: Bundle) => median((samples.get(`${mode}:${b.id}`) ?? []).map(total));
    // Each round imports a handler and its baseline one after the other: the ratio within a
    // round sees the same machine state, so its median moves less than a ratio of medians.
    const pairs = (mode: NodeMode, h: Bundle, b: Bundle): Spread => {
      const base = samples.get(`${mode}:${b.id}`) ?? [];
      const ratios = (samples.get(`${mode}:${h.id}`) ?? []).map((s, i) => total(s) / total(base[i]!));
      return { median: median(ratios), low: quantile(ratios, 0.25), high: quantile(ratios, 0.75) };
    };
    const pairsByMode = (x: Bundle, base: Bundle) =>
      Object.fromEntries(modes.map((m) => [m, pairs(m, x, base)])) as Partial<Record<NodeMode, Spread>>;
    const cpuMs = (mode: NodeMode, b: Bundle) =>
      median((samples.get(`${mode}:${b.id}`) ?? []).map((s) => s.importCpuMs + s.constructCpuMs));

    const profileRuns = options.profileRuns ?? 3;
    progress(`cold start: ${profileRuns} CPU-profiled imports of each bundle`);
    const profiles = new Map<string, Map<string, number>>();
    for (const bundle of bundles)
      if (bundle.kind !== 'control') profiles.set(bundle.id, await profileImports(bundle, profileRuns, join(tmp.path, 'prof')));

    const rows = handlers.map((name): ColdStartRow => {
      const h = bundles.find((b) => b.kind === 'handler' && b.name === name)!;
      const b = bundles.find((x) => x.kind === 'baseline' && x.name === name)!;
      const byMode = (bundle: Bundle, f: typeof ms = ms) =>
        Object.fromEntries((Object.keys(nodeModes) as NodeMode[]).map((m) => [m, modes.includes(m) ? f(m, bundle) : Number.NaN])) as Record<
          NodeMode,
          number
        >;
      return {
        name,
        bytes: h.bytes,
        baselineBytes: b.bytes,
        mapBytes: h.mapBytes,
        importMs: byMode(h),
        baselineMs: byMode(b),
        pairRatio: pairsByMode(h, b),
        importCpuMs: byMode(h, cpuMs),
        baselineCpuMs: byMode(b, cpuMs),
        baselineConstructMs: median((samples.get(`deployed:${b.id}`) ?? []).map((s) => s.constructMs)),
        clientsAtImport: clientsAtImport.get(name) ?? [],
        bytesByPackage: bytesBy(h, (p) => p),
        baselineBytesByPackage: bytesBy(b, (p) => p),
        timeByCategory: profiles.get(h.id)!,
        baselineTimeByCategory: profiles.get(b.id)!,
      };
    });
    return { rows, control: { name: controlled.name, ratio: pairsByMode(control, controlled) } };
  } finally {
    tmp.remove();
  }
}

const KB = 1024;
export const SIZE_TARGET_KB = 150;
export const TIME_TARGET_RATIO = 1.25;

function sumBy<K>(entries: Map<string, number>, key: (k: string) => K): Map<K, number> {
  const out = new Map<K, number>();
  for (const [k, v] of entries) out.set(key(k), (out.get(key(k)) ?? 0) + v);
  return out;
}

function extra(h: Map<string, number>, b: Map<string, number>): Map<string, number> {
  const keys = new Set([...h.keys(), ...b.keys()]);
  return new Map([...keys].map((k) => [k, (h.get(k) ?? 0) - (b.get(k) ?? 0)]));
}

/** The cold start tables, as markdown. */
export function coldStartReport({ rows, control }: ColdStart): string {
  const out: string[] = [];
  const spread = (s: Spread | undefined) => (s ? `${s.median.toFixed(2)}× (${s.low.toFixed(2)}–${s.high.toFixed(2)})` : 'n/a');
  out.push(
    '### Cold start: bundle size and import time (median of fresh `node` processes; NODE_OPTIONS=--enable-source-maps as the stack deploys)',
    '',
    table(
      ['handler', 'size KB', 'baseline KB', 'Δ KB', `Δ ≤ ${SIZE_TARGET_KB}`, 'import ms', 'baseline ms', 'ratio', 'ratio by round (IQR)', `≤ ${TIME_TARGET_RATIO}×`, 'CPU ms', 'baseline CPU ms', 'CPU ratio'],
      rows.map((r) => [
        r.name,
        fixed(r.bytes / KB),
        fixed(r.baselineBytes / KB),
        fixed((r.bytes - r.baselineBytes) / KB),
        pass(r.bytes - r.baselineBytes <= SIZE_TARGET_KB * KB),
        fixed(r.importMs.deployed),
        fixed(r.baselineMs.deployed),
        ratio(r.importMs.deployed, r.baselineMs.deployed),
        spread(r.pairRatio.deployed),
        pass((r.pairRatio.deployed?.median ?? Number.NaN) <= TIME_TARGET_RATIO),
        fixed(r.importCpuMs.deployed),
        fixed(r.baselineCpuMs.deployed),
        ratio(r.importCpuMs.deployed, r.baselineCpuMs.deployed),
      ]),
    ),
    '',
    `Stage: upstreams of kinds ${benchKinds.join(', ')} (the README's worked example); each Lambda bundles the kinds its work may load (lib/bundled-kinds.ts). ` +
      'Baseline: a bundle (same options) that imports the SDK clients the handler uses, with the commands it sends, and constructs them; its times include that construction. The run stops if a handler bundles an SDK client its baseline lacks (or the reverse). ' +
      'Ratio: of the median times; by round: the median of the ratios of the two imports made one after the other in each round (quartiles in brackets), which the target is judged on. ' +
      'CPU ms: user + system time of the process (all threads) during the import; it moves less than wall time when other work shares the machine.',
    '',
    `Instrument check: the ${control.name} baseline against a byte-identical copy of itself, in the same rounds: ${spread(control.ratio.deployed)}` +
      (control.ratio.plain ? `; without source maps ${spread(control.ratio.plain)}.` : '.'),
    '',
  );
  out.push(
    '#### The same imports without --enable-source-maps, and what the handlers construct while loading',
    '',
    table(
      ['handler', 'import ms', 'baseline ms', 'ratio', 'ratio by round (IQR)', 'CPU ratio', 'map KB', 'baseline construct ms', 'SDK clients built during handler import'],
      rows.map((r) => [
        r.name,
        fixed(r.importMs.plain),
        fixed(r.baselineMs.plain),
        ratio(r.importMs.plain, r.baselineMs.plain),
        spread(r.pairRatio.plain),
        ratio(r.importCpuMs.plain, r.baselineCpuMs.plain),
        fixed(r.mapBytes / KB),
        fixed(r.baselineConstructMs, 1),
        r.clientsAtImport.length ? r.clientsAtImport.join(', ') : 'none',
      ]),
    ),
    '',
  );

  const groups = ['zod', 'AWS SDK', '@aws-lambda-powertools', '@middy', 'standardwebhooks', 'json5', 'our code', 'other'];
  const extraBytes = rows.map((r) => sumBy(extra(r.bytesByPackage, r.baselineBytesByPackage), groupOf));
  out.push(
    '#### Where the extra bytes go (handler − baseline, KB, esbuild metafile)',
    '',
    table(
      ['package family', ...rows.map((r) => r.name)],
      [
        ...groups.map((g) => [g, ...extraBytes.map((e) => fixed((e.get(g) ?? 0) / KB))]),
        ['total', ...rows.map((r) => fixed((r.bytes - r.baselineBytes) / KB))],
      ],
    ),
    '',
  );

  const extraTime = rows.map((r) =>
    sumBy(extra(r.timeByCategory, r.baselineTimeByCategory), (c) => (c.includes(':') || c.startsWith('bundle') ? c : groupOf(c))),
  );
  const timeRows = [...new Set(extraTime.flatMap((e) => [...e.keys()]))]
    .map((c) => ({ c, total: extraTime.reduce((s, e) => s + Math.abs(e.get(c) ?? 0), 0) }))
    .filter((x) => x.total >= 1)
    .sort((a, b) => b.total - a.total);
  out.push(
    "#### Where the extra import time goes (handler − baseline, ms of CPU-profile self time during the import, the baseline's construct() included, median of profiled runs)",
    '',
    table(
      ['spent in', ...rows.map((r) => r.name)],
      [
        ...timeRows.map(({ c }) => [c, ...extraTime.map((e) => fixed(e.get(c) ?? 0))]),
        ['total profiled', ...rows.map((r) => fixed(sum(r.timeByCategory) - sum(r.baselineTimeByCategory)))],
      ],
    ),
    '',
  );

  out.push('#### Top contributors per handler (extra KB by package; extra ms by package or phase)', '');
  for (const r of rows) {
    const bytes = [...extra(r.bytesByPackage, r.baselineBytesByPackage)].sort((a, b) => b[1] - a[1]).slice(0, 6);
    const time = [...extra(r.timeByCategory, r.baselineTimeByCategory)].sort((a, b) => b[1] - a[1]).slice(0, 5);
    out.push(
      `- **${r.name}**: ${bytes.map(([p, v]) => `${p} +${fixed(v / KB)} KB`).join(', ')}; time: ${time
        .map(([p, v]) => `${p} +${fixed(v)} ms`)
        .join(', ')}`,
    );
  }
  out.push('');
  return out.join('\n');
}

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
