import { Duration, Stack, Token, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { bedrockOutputPrefix } from '../lambdas/shared/bedrock-output';
import type { Catalog } from '../lambdas/shared/catalog';

/** One Bedrock model a route names, in the region of its upstream. */
export interface BedrockModelGrant {
  region: string;
  modelId: string;
}

/** Every Bedrock model the catalog routes to, once each. */
export function bedrockModelGrants(catalog: Catalog): BedrockModelGrant[] {
  const regions = new Map(catalog.upstreams.filter((u) => u.kind === 'bedrock').map((u) => [u.name, u.region!]));
  const grants = new Map<string, BedrockModelGrant>();
  for (const model of Object.values(catalog.models))
    for (const route of model.routes) {
      const region = regions.get(route.upstream);
      if (region) grants.set(`${region} ${route.model}`, { region, modelId: route.model });
    }
  return [...grants.values()];
}

export interface BedrockAccessProps {
  /** The gateway's bucket; Bedrock writes under `bedrock/` in it. */
  bucket: s3.Bucket;
  models: readonly BedrockModelGrant[];
  /** The functions that start and read invocations (submit, reconcile, poll). */
  callers: readonly { role: iam.IRole }[];
  /** The archive function, which copies what Bedrock wrote to `videos/` and deletes it. */
  archiver: { role: iam.IRole };
  /** Output nobody archived (a task that failed before its archive) is removed after this; default 7 days. */
  expireOutputAfter?: Duration;
}

/** A cross-region inference profile id (`us.luma.ray-v2:0`) rather than a model id. */
const profilePrefix = /^(us|eu|apac|global)\./;

/**
 * What Bedrock upstreams need: `bedrock:InvokeModel` (which StartAsyncInvoke requires) on
 * the configured models only, reading and listing invocations, and S3 writes only under
 * `bedrock/` — Bedrock writes the output with the caller's own permissions (a forward
 * access session), so the bucket needs no policy for Bedrock, and its SSE-S3 encryption
 * no KMS grant. The archive
 * function may read and delete under that prefix, nothing else of Bedrock's. No model
 * configured: nothing is granted.
 */
export class BedrockAccess extends Construct {
  constructor(scope: Construct, id: string, props: BedrockAccessProps) {
    super(scope, id);
    if (props.models.length === 0) return;
    const { partition, account } = Stack.of(this);
    const arns = bedrockArns(props.models, partition, account);
    // The same ARNs as cdk-nag writes them in its finding ids.
    const named = bedrockArns(props.models, '<AWS::Partition>', Token.isUnresolved(account) ? '<AWS::AccountId>' : account);
    const { modelArns, invocations } = arns;
    const output = props.bucket.arnForObjects(`${bedrockOutputPrefix}*`);

    const statements = [
      // StartAsyncInvoke is authorized as bedrock:InvokeModel on the model (the API reference's
      // words); the action of its own name is granted with it, on the same models.
      new iam.PolicyStatement({ actions: ['bedrock:InvokeModel', 'bedrock:StartAsyncInvoke'], resources: modelArns }),
      // The invocation a start creates, and reading it: this account's, in the configured regions only.
      new iam.PolicyStatement({ actions: ['bedrock:StartAsyncInvoke', 'bedrock:GetAsyncInvoke'], resources: invocations }),
      new iam.PolicyStatement({ actions: ['bedrock:ListAsyncInvokes'], resources: ['*'] }),
      new iam.PolicyStatement({ actions: ['s3:PutObject'], resources: [output] }),
    ];
    const outputReason = `Bedrock names each invocation's folder itself, under ${bedrockOutputPrefix}{taskId}/, so only the prefix can be granted.`;
    for (const caller of props.callers) {
      for (const s of statements) caller.role.addToPrincipalPolicy(s);
      Validations.of(caller.role).acknowledge(
        { id: 'AwsSolutions-IAM5[Resource::*]', reason: 'bedrock:ListAsyncInvokes (finding the job of an ambiguous submit) takes no resource.' },
        ...named.invocations.map((r) => ({ id: `AwsSolutions-IAM5[Resource::${r}]`, reason: 'Invocation ARNs are made by Bedrock at submit; only those of this account and region are granted.' })),
        ...named.modelArns.filter((a) => a.includes('*')).map((a) => ({ id: `AwsSolutions-IAM5[Resource::${a}]`, reason: 'An inference profile serves its model from any of its regions.' })),
        { id: `AwsSolutions-IAM5[Resource::${nagArn(props.bucket)}/${bedrockOutputPrefix}*]`, reason: outputReason },
      );
    }
    props.archiver.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject', 's3:DeleteObject'], resources: [output] }));
    Validations.of(props.archiver.role).acknowledge({ id: `AwsSolutions-IAM5[Resource::${nagArn(props.bucket)}/${bedrockOutputPrefix}*]`, reason: outputReason });

    props.bucket.addLifecycleRule({ id: 'expire-unarchived-bedrock-output', prefix: bedrockOutputPrefix, expiration: props.expireOutputAfter ?? Duration.days(7) });
  }
}

function bedrockArns(models: readonly BedrockModelGrant[], partition: string, account: string) {
  const regions = [...new Set(models.map((m) => m.region))].sort();
  const modelArns = models.flatMap(({ region, modelId }) =>
    profilePrefix.test(modelId)
      ? // A profile routes to its model in any of the profile's regions.
        [`arn:${partition}:bedrock:${region}:${account}:inference-profile/${modelId}`, `arn:${partition}:bedrock:*::foundation-model/${modelId.replace(profilePrefix, '')}`]
      : [`arn:${partition}:bedrock:${region}::foundation-model/${modelId}`],
  );
  return { modelArns: [...new Set(modelArns)], invocations: regions.map((r) => `arn:${partition}:bedrock:${r}:${account}:async-invoke/*`) };
}

/** A bucket's ARN as cdk-nag writes it in finding ids. */
const nagArn = (bucket: s3.Bucket) => `<${Stack.of(bucket).getLogicalId(bucket.node.defaultChild as never)}.Arn>`;
