import { Validations } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

export interface KeyedUpstream {
  /** The operator's name for the upstream (UPSTREAMS). */
  readonly name: string;
  /** Complete ARN of a secret the operator already has; else the stack creates one. */
  readonly existingSecretArn?: string;
}

export interface GatewaySecretsProps {
  /** The upstreams that sign in with an API key: one secret each. */
  readonly keyedUpstreams: readonly KeyedUpstream[];
  /**
   * The one upstream of the single-upstream shorthand: its secret keeps the construct id it
   * had before the catalog (`UpstreamKey`), so a deployed stack keeps its key on upgrade.
   */
  readonly shorthand?: boolean;
}

/** `reseller-a` → `ResellerA`: upstream names in construct ids and output names. */
export const pascalName = (name: string) =>
  name
    .split('-')
    .filter(Boolean)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');

/**
 * The gateway's secrets: the callback HMAC key, and one secret per keyed upstream. Lambdas
 * get only their ARNs and read the values at run time, so no value ever appears in a
 * template or a function's configuration.
 */
export class GatewaySecrets extends Construct {
  /** HMAC key of the callback tokens (`?token=`) that we hand to the upstream. */
  readonly callbackSecret: secretsmanager.ISecret;
  /** Each keyed upstream's API key, by upstream name. */
  readonly upstreamKeys: ReadonlyMap<string, secretsmanager.ISecret>;
  /** True for the single-upstream shorthand, whose one secret keeps its earlier names. */
  readonly shorthand: boolean;

  constructor(scope: Construct, id: string, props: GatewaySecretsProps) {
    super(scope, id);
    this.shorthand = props.shorthand ?? false;

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

    const keys = new Map<string, secretsmanager.ISecret>();
    const ids = new Map<string, string>();
    for (const upstream of props.keyedUpstreams) {
      const keyId = props.shorthand ? 'UpstreamKey' : `UpstreamKey${pascalName(upstream.name)}`;
      // `a-b` and `a--b` would share an id (and an output name): say so rather than fail obscurely.
      const clash = ids.get(keyId);
      if (clash) throw new Error(`upstreams ${clash} and ${upstream.name} would share the secret id ${keyId}: rename one`);
      ids.set(keyId, upstream.name);
      if (upstream.existingSecretArn) {
        keys.set(upstream.name, secretsmanager.Secret.fromSecretCompleteArn(this, keyId, upstream.existingSecretArn));
        continue;
      }
      // CloudFormation fills the new secret with a random placeholder; the operator replaces it:
      // aws secretsmanager put-secret-value --secret-id <its ARN output> --secret-string <key>
      const secret = new secretsmanager.Secret(this, keyId, {
        description: `Video Task Gateway: API key of the upstream ${upstream.name} (set it with put-secret-value)`,
      });
      Validations.of(secret).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason:
          'An upstream API key is issued by the provider; Secrets Manager cannot rotate it, the operator replaces it with put-secret-value.',
      });
      keys.set(upstream.name, secret);
    }
    this.upstreamKeys = keys;
  }
}
