import { Validations } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

export interface GatewaySecretsProps {
  /** Complete ARN of an upstream key secret the operator already has; else the stack creates one. */
  readonly upstreamKeySecretArn?: string;
}

/**
 * The two secrets of the gateway. Lambdas get only their ARNs and read the values at run
 * time, so no value ever appears in a template or a function's configuration.
 */
export class GatewaySecrets extends Construct {
  /** HMAC key of the callback tokens (`?token=`) that we hand to the upstream. */
  readonly callbackSecret: secretsmanager.ISecret;
  /** The upstream provider's API key. */
  readonly upstreamKey: secretsmanager.ISecret;

  constructor(scope: Construct, id: string, props: GatewaySecretsProps = {}) {
    super(scope, id);

    const callbackSecret = new secretsmanager.Secret(this, 'CallbackSecret', {
      description: 'Video Task Gateway: HMAC key of the upstream callback tokens',
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
    });
    Validations.of(callbackSecret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'Rotating the callback HMAC key would invalidate the callback URLs already given to the upstream for tasks in flight; rotate by hand between drains.',
    });
    this.callbackSecret = callbackSecret;

    if (props.upstreamKeySecretArn) {
      this.upstreamKey = secretsmanager.Secret.fromSecretCompleteArn(this, 'UpstreamKey', props.upstreamKeySecretArn);
    } else {
      // CloudFormation fills the new secret with a random placeholder; the operator replaces it:
      // aws secretsmanager put-secret-value --secret-id <UpstreamKeySecretArn> --secret-string <key>
      const upstreamKey = new secretsmanager.Secret(this, 'UpstreamKey', {
        description: 'Video Task Gateway: API key of the upstream video provider (set it with put-secret-value)',
      });
      Validations.of(upstreamKey).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason:
          'The upstream API key is issued by the provider; Secrets Manager cannot rotate it, the operator replaces it with put-secret-value.',
      });
      this.upstreamKey = upstreamKey;
    }
  }
}
