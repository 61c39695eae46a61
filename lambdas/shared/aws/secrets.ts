import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

let client: SecretsManagerClient | undefined;
const cache = new Map<string, { value: Promise<string>; until: number }>();
const CACHE_MS = 5 * 60_000;

/**
 * A secret's value: from Secrets Manager when an ARN is configured (cached for a few minutes
 * so a rotation reaches warm Lambdas), else the local plain value.
 */
export async function secretValue(arn: string | undefined, localValue: string | undefined): Promise<string> {
  if (!arn) {
    if (localValue === undefined) throw new Error('secret is neither in Secrets Manager nor configured locally');
    return localValue;
  }
  const hit = cache.get(arn);
  if (hit && hit.until > Date.now()) return hit.value;
  client ??= new SecretsManagerClient({});
  const value = client.send(new GetSecretValueCommand({ SecretId: arn })).then((r) => {
    if (r.SecretString === undefined) throw new Error(`secret ${arn} has no string value`);
    return r.SecretString;
  });
  value.catch(() => cache.delete(arn));
  cache.set(arn, { value, until: Date.now() + CACHE_MS });
  return value;
}
