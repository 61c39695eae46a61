import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3n from 'aws-cdk-lib/aws-s3-notifications';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { tableSchema } from '../lambdas/shared/table-schema';

/** Archived videos live at `videos/{id}.mp4`; the event filter and the IAM grants use this. */
export const videoKeyPrefix = 'videos/';
/** Reference images clients upload with an OpenAI-dialect create. */
export const inputKeyPrefix = 'inputs/';
export const videoKeySuffix = '.mp4';

/**
 * Where the gateway keeps its state: the task table, the video bucket (with its access-log
 * bucket) and the topic that tells the operator's systems about each archived video.
 */
export class GatewayStorage extends Construct {
  readonly table: dynamodb.Table;
  readonly bucket: s3.Bucket;
  readonly accessLogsBucket: s3.Bucket;
  readonly videoEvents: sns.Topic;

  constructor(
    scope: Construct,
    id: string,
    options: {
      legacyOwnerIndex?: boolean;
      /** How long an uploaded reference image is kept: past the last moment its task can be (re)submitted. */
      inputRetention?: Duration;
    } = {},
  ) {
    super(scope, id);

    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: tableSchema.partitionKey, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // The handlers only write `expires_at`; DynamoDB deletes the items (the code makes no TTL calls).
      timeToLiveAttribute: tableSchema.ttlAttribute,
      // Task records and API key hashes must survive a `cdk destroy` or a replaced stack.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const { byOwner, legacyByOwner, byDue } = tableSchema;
    const projection = { ALL: dynamodb.ProjectionType.ALL, KEYS_ONLY: dynamodb.ProjectionType.KEYS_ONLY };
    for (const index of options.legacyOwnerIndex ? [byOwner, legacyByOwner] : [byOwner]) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.indexName,
        partitionKey: { name: index.partitionKey, type: dynamodb.AttributeType.STRING },
        // Task ids sort by creation time, so this index lists a key's tasks newest first.
        sortKey: { name: index.sortKey, type: dynamodb.AttributeType.STRING },
        projectionType: projection[index.projection],
      });
    }
    this.table.addGlobalSecondaryIndex({
      indexName: byDue.indexName,
      partitionKey: { name: byDue.partitionKey, type: dynamodb.AttributeType.STRING },
      // Epoch seconds: the reconciler reads the tasks that are due first.
      sortKey: { name: byDue.sortKey, type: dynamodb.AttributeType.NUMBER },
      projectionType: projection[byDue.projection],
    });

    this.accessLogsBucket = new s3.Bucket(this, 'AccessLogsBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      // S3 server access logging can only deliver to SSE-S3 buckets, not SSE-KMS.
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(365) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.bucket = new s3.Bucket(this, 'VideoBucket', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'video-bucket/',
      lifecycleRules: [
        // A failed archive aborts its multipart upload, but a killed Lambda cannot: clean up its parts.
        { id: 'abort-incomplete-multipart-uploads', abortIncompleteMultipartUploadAfter: Duration.days(1) },
        // An upstream fetches the image when it takes the job, which is before the task's deadline.
        { id: 'expire-uploaded-inputs', prefix: inputKeyPrefix, expiration: options.inputRetention ?? Duration.days(2) },
      ],
      // The archived videos are the product; a stack replacement must not delete them.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.videoEvents = new sns.Topic(this, 'VideoEvents', {
      displayName: 'Video Task Gateway: archived videos',
      enforceSSL: true,
    });
    this.bucket.addEventNotification(s3.EventType.OBJECT_CREATED, new s3n.SnsDestination(this.videoEvents), {
      prefix: videoKeyPrefix,
      suffix: videoKeySuffix,
    });
    acknowledgeBucketNotificationsHandler(Stack.of(this));
  }
}

/**
 * CDK writes bucket notifications through one singleton custom-resource Lambda per stack,
 * which we do not define and cannot configure; acknowledge what cdk-nag finds on it, there.
 */
function acknowledgeBucketNotificationsHandler(stack: Stack) {
  const handler = stack.node.tryFindChild('BucketNotificationsHandler050a0587b7544547bf325f094a3db834');
  if (!handler) return;
  Validations.of(handler).acknowledge({
    id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
    reason:
      "CDK's own bucket-notifications custom resource (runs only during deployment) writes its logs with the AWS basic execution role; its role is not configurable.",
  });
}
