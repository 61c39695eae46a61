import * as path from 'node:path';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { lambdaEntry, type LambdaName } from '../lambdas/shared/routes';

/** Lets CommonJS dependencies call `require` inside the ESM bundle. */
export const esmRequireBanner = "import { createRequire } from 'module'; const require = createRequire(import.meta.url);";

/**
 * Modules the Lambda bundles take from elsewhere (esbuild `alias`): `node:stream/web`, which
 * middy's core imports for response streaming that no handler uses, is a stand-in that loads
 * Node's web streams only if a handler ever touches them (`lambdas/shared/lazy-web-streams.ts`).
 */
export function bundleAliases(projectRoot: string): Record<string, string> {
  return { 'node:stream/web': path.join(projectRoot, 'lambdas', 'shared', 'lazy-web-streams.ts') };
}

export interface GatewayFunctionProps {
  readonly name: LambdaName;
  /** Repository root: holds `lambdas/` and `package-lock.json`. */
  readonly projectRoot: string;
  readonly environment: Record<string, string>;
  readonly timeout: Duration;
  readonly memorySize: number;
  readonly description: string;
  readonly logRetention: logs.RetentionDays;
  /** Retries of asynchronous invocations (the schedule); Lambda's default is 2. */
  readonly retryAttempts?: number;
  /** Compile-time constants for esbuild (`bundledKindDefines`: which provider kinds to bundle). */
  readonly define?: Record<string, string>;
  /** Shell commands that add files beside the bundle (the console's static files). */
  readonly afterBundling?: (outputDir: string) => string[];
}

/**
 * One of the gateway's Lambdas: an ESM bundle of `lambdas/<name>/handler.ts` built by the
 * local esbuild, with its own log group and a role that starts with nothing but that log
 * group; every other permission is granted by the stack, one by one.
 */
export class GatewayFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: GatewayFunctionProps) {
    super(scope, id);

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      // Logs are diagnostics, not records: they go with the stack.
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // Our own role instead of AWSLambdaBasicExecutionRole, which may write to any log group.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Video Task Gateway ${props.name} Lambda`,
    });
    this.logGroup.grantWrite(this.role);

    this.function = new NodejsFunction(this, 'Function', {
      entry: path.join(props.projectRoot, lambdaEntry(props.name)),
      handler: 'handler',
      projectRoot: props.projectRoot,
      depsLockFilePath: path.join(props.projectRoot, 'package-lock.json'),
      runtime: lambda.Runtime.NODEJS_22_X,
      // Graviton: cheaper per GB-second, and the bundle has no native modules.
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize,
      timeout: props.timeout,
      description: props.description,
      role: this.role,
      logGroup: this.logGroup,
      // Traces show where a request's time goes (upstream, S3, DynamoDB); X-Ray's IAM needs '*'.
      tracing: lambda.Tracing.ACTIVE,
      retryAttempts: props.retryAttempts,
      environment: {
        ...props.environment,
        // Stack traces point into the TypeScript sources through the bundled source maps.
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: {
        // Bundle with the local esbuild (a devDependency), so synth needs neither Docker nor network.
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        target: 'node22',
        minify: true,
        sourceMap: true,
        // Stack traces need only the mappings; without the sources the map is a quarter the size to load.
        sourcesContent: false,
        // Prefer ESM entry points so esbuild can tree-shake the AWS SDK.
        mainFields: ['module', 'main'],
        // Bundle the pinned AWS SDK instead of the runtime's copy, so cloud and local run the same code.
        externalModules: [],
        banner: esmRequireBanner,
        define: props.define,
        esbuildArgs: Object.fromEntries(Object.entries(bundleAliases(props.projectRoot)).map(([from, to]) => [`--alias:${from}`, to])),
        commandHooks: props.afterBundling
          ? {
              beforeBundling: () => [],
              beforeInstall: () => [],
              afterBundling: (_inputDir: string, outputDir: string) => props.afterBundling!(outputDir),
            }
          : undefined,
      },
    });
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'nodejs22.x is a supported LTS runtime and the bundles target node22; moving to a newer runtime is a tested change of its own, not automatic.',
    });
  }

  /**
   * Acknowledge the IAM5 findings on this function's policy for resources that are
   * wildcards by nature (object ARNs under a prefix, index ARNs, X-Ray).
   */
  acknowledgeWildcards(findings: { resource: string; reason: string }[]) {
    Validations.of(this.role).acknowledge(
      ...findings.map((f) => ({ id: `AwsSolutions-IAM5[Resource::${f.resource}]`, reason: f.reason })),
    );
  }
}
