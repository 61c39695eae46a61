import { beforeAll, describe, expect, it } from 'vitest';
import { lambdaNames, type LambdaName } from '../../lambdas/shared/routes';
import { asArray, render, resourcesOfType, synthesizeGateway, type Synthesized } from './support';

interface Statement {
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

let s: Synthesized;
let names: Record<string, string>;
beforeAll(() => {
  s = synthesizeGateway();
  // Readable names for the logical ids that appear in rendered ARNs.
  names = {
    [s.id(s.stack.storage.table)]: 'table',
    [s.id(s.stack.storage.bucket)]: 'videoBucket',
    [s.id(s.stack.secrets.upstreamKeys.get('duomi')!)]: 'upstreamKey',
    [s.id(s.stack.secrets.callbackSecret)]: 'callbackSecret',
    [s.id(s.stack.archiveQueue.queue)]: 'archiveQueue',
    [s.id(s.stack.notifyQueue.queue)]: 'notifyQueue',
    [s.id(s.stack.pollQueue.queue)]: 'pollQueue',
    ...Object.fromEntries(lambdaNames.map((n) => [s.id(s.stack.functions[n].logGroup), 'ownLogGroup'])),
  };
});

/** Every Allow statement of every policy attached to a function's role (inline, attached or managed). */
function statementsOf(name: LambdaName): Statement[] {
  const roleId = s.id(s.stack.functions[name].role);
  const role = s.json.Resources[roleId]!.Properties!;
  expect(role.ManagedPolicyArns ?? []).toEqual([]);
  const inline = asArray(role.Policies).flatMap((p: any) => p.PolicyDocument.Statement as Statement[]);
  const attached = resourcesOfType(s.json, 'AWS::IAM::Policy')
    .filter(([, p]) => asArray(p.Properties!.Roles).some((r: any) => r.Ref === roleId))
    .flatMap(([, p]) => p.Properties!.PolicyDocument.Statement as Statement[]);
  return [...inline, ...attached];
}

/** `<Logical.Arn>/index/*` → `table/index/*`, so expectations read as names. */
function resourcesOf(statement: Statement): string[] {
  return asArray(statement.Resource).map((r) =>
    render(r).replace(/<(\w+)(\.Arn)?>/g, (all, id: string) => names[id] ?? all),
  );
}

/**
 * Resources that may carry a `*`, each for a reason AWS imposes; any other wildcard fails.
 * Actions may never carry one.
 */
const wildcardExceptions: { resource: string; actions: RegExp; reason: string }[] = [
  {
    resource: '*',
    actions: /^xray:(PutTraceSegments|PutTelemetryRecords)$/,
    reason: 'X-Ray has no resource-level permissions',
  },
  {
    resource: 'table/index/*',
    actions: /^dynamodb:/,
    reason: "the table's own indexes (byOwner, byDue), as CDK's table grants name them",
  },
  {
    resource: 'videoBucket/videos/*',
    actions: /^s3:(GetObject|PutObject|AbortMultipartUpload|ListMultipartUploadParts|DeleteObject)$/,
    reason: 'video objects are named by task id, so only their prefix can be granted',
  },
  {
    resource: 'videoBucket/inputs/*',
    actions: /^s3:(GetObject|PutObject)$/,
    reason: 'uploaded reference images are named when they arrive, so only their prefix can be granted',
  },
];

/**
 * What a statement lets a function do, in words: `read table`, `send archiveQueue`, ...
 * One statement may say several things: CDK's minimizePolicies merges the statements on one
 * resource (sending and consuming one queue, reading and uploading one prefix).
 */
function capabilities(statement: Statement): string[] {
  const actions = asArray(statement.Action);
  const targets = [...new Set(resourcesOf(statement).map((r) => r.replace(/\/index\/\*$/, '')))];
  const has = (a: string) => actions.includes(a);
  const verbs: string[] = [];
  const classified = new Set<string>();
  const verb = (name: string, matches: (a: string) => boolean) => {
    const hit = actions.filter(matches);
    if (hit.length) verbs.push(name);
    hit.forEach((a) => classified.add(a));
  };
  verb('log', (a) => a.startsWith('logs:'));
  verb('trace', (a) => a.startsWith('xray:'));
  if (actions.some((a) => a.startsWith('dynamodb:')))
    verb(has('dynamodb:PutItem') || has('dynamodb:UpdateItem') ? 'write' : 'read', (a) => a.startsWith('dynamodb:'));
  verb('read', (a) => a === 'secretsmanager:GetSecretValue' || a === 'secretsmanager:DescribeSecret');
  verb('consume', (a) => ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage'].includes(a));
  verb('send', (a) => a === 'sqs:SendMessage');
  // Both queue grants include these lookups.
  actions.filter((a) => a === 'sqs:GetQueueUrl' || a === 'sqs:GetQueueAttributes').forEach((a) => classified.add(a));
  verb('upload', (a) => ['s3:PutObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'].includes(a));
  verb('read', (a) => a === 's3:GetObject');
  verb('delete', (a) => a === 's3:DeleteObject');
  verb('invoke', (a) => a === 'bedrock:InvokeModel' || a === 'bedrock:StartAsyncInvoke');
  verb('readInvocations', (a) => a === 'bedrock:GetAsyncInvoke');
  verb('listInvocations', (a) => a === 'bedrock:ListAsyncInvokes');
  const unclassified = actions.filter((a) => !classified.has(a));
  if (unclassified.length) throw new Error(`unclassified actions ${unclassified.join(', ')}: ${JSON.stringify(statement)}`);
  return [...new Set(verbs.flatMap((v) => (v === 'trace' ? ['trace'] : targets.map((t) => `${v} ${t}`))))];
}

const expectedAccess: Record<LambdaName, string[]> = {
  submit: [
    'write table',
    'read upstreamKey',
    'read callbackSecret',
    'send notifyQueue',
    'send pollQueue',
    'upload videoBucket/inputs/*',
    'read videoBucket/inputs/*',
    'delete videoBucket/videos/*',
  ],
  query: ['read table', 'read videoBucket/videos/*'],
  callback: ['write table', 'read upstreamKey', 'read callbackSecret', 'send archiveQueue', 'send notifyQueue'],
  archive: ['consume archiveQueue', 'write table', 'read upstreamKey', 'upload videoBucket/videos/*', 'read videoBucket/videos/*', 'send archiveQueue', 'send notifyQueue'],
  notify: ['consume notifyQueue', 'write table', 'read videoBucket/videos/*', 'send notifyQueue'],
  reconcile: ['write table', 'read upstreamKey', 'read callbackSecret', 'send archiveQueue', 'send notifyQueue', 'send pollQueue', 'read videoBucket/inputs/*'],
  poll: ['consume pollQueue', 'write table', 'read upstreamKey', 'send archiveQueue', 'send notifyQueue', 'send pollQueue'],
  // Static files bundled with it: nothing but its logs and traces.
  console: [],
};

describe('least privilege', () => {
  it.each(lambdaNames)('%s: no wildcard action, and no wildcard resource beyond the documented exceptions', (name) => {
    for (const statement of statementsOf(name)) {
      expect(statement.Effect).toBe('Allow');
      for (const action of asArray(statement.Action)) expect(action, `${name}: ${action}`).not.toContain('*');
      for (const resource of resourcesOf(statement).filter((r) => r.includes('*'))) {
        const exception = wildcardExceptions.find(
          (e) => e.resource === resource && asArray(statement.Action).every((a) => e.actions.test(a)),
        );
        expect(exception, `${name}: ${resource} for ${asArray(statement.Action).join(', ')}`).toBeDefined();
      }
    }
  });

  it.each(lambdaNames)('%s: gets exactly the access its core function needs', (name) => {
    const access = new Set(statementsOf(name).flatMap(capabilities));
    // Table grants come as two statements (items, and stream reads); writing implies reading.
    if (access.has('write table')) access.delete('read table');
    expect([...access].sort()).toEqual(['log ownLogGroup', 'trace', ...expectedAccess[name]].sort());
  });

  it('only the archive Lambda may write videos, and only submit (a client\'s delete) may delete one', () => {
    const archive = statementsOf('archive').filter((st) => asArray(st.Action).some((a) => a.startsWith('s3:')));
    expect(archive.flatMap((st) => asArray(st.Action)).sort()).toEqual(
      ['s3:AbortMultipartUpload', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:PutObject'].sort(),
    );
    const onVideos = (name: (typeof lambdaNames)[number], action: string) =>
      statementsOf(name).some((st) => asArray(st.Action).includes(action) && resourcesOf(st).includes('videoBucket/videos/*'));
    for (const name of lambdaNames.filter((n) => n !== 'archive')) expect(onVideos(name, 's3:PutObject'), name).toBe(false);
    for (const name of lambdaNames) expect(onVideos(name, 's3:DeleteObject'), name).toBe(name === 'submit');
  });

  it('the query Lambda cannot change the table', () => {
    const actions = statementsOf('query').flatMap((st) => asArray(st.Action));
    for (const write of ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'])
      expect(actions).not.toContain(write);
  });

  it('every exception is used by some function (no stale entries)', () => {
    const used = lambdaNames.flatMap((n) => statementsOf(n).flatMap(resourcesOf));
    for (const e of wildcardExceptions) expect(used, `${e.resource}: ${e.reason}`).toContain(e.resource);
  });
});
