import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { METRICS_NAMESPACE, metric } from '../../lambdas/shared/metrics';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Stage } from 'aws-cdk-lib';
import { readmeWorkedExample, resourcesOfType, synthesizeGateway, type Synthesized } from './support';

let s: Synthesized;
beforeAll(() => {
  s = synthesizeGateway();
});

const alarms = () => Object.fromEntries(resourcesOfType(s.json, 'AWS::CloudWatch::Alarm').map(([, r]) => [r.Properties!.AlarmDescription as string, r.Properties!]));
const topicId = () => s.id(s.stack.monitoring.alarmTopic);

describe('alarms', () => {
  it('each goes to the alarm topic, on alarm and on recovery', () => {
    const all = resourcesOfType(s.json, 'AWS::CloudWatch::Alarm');
    expect(all.length).toBeGreaterThanOrEqual(6);
    for (const [, a] of all) {
      expect(a.Properties!.AlarmActions).toEqual([{ Ref: topicId() }]);
      expect(a.Properties!.OKActions).toEqual([{ Ref: topicId() }]);
      expect(a.Properties!.TreatMissingData).toBe('notBreaching');
    }
  });

  it('a message in any dead-letter queue', () => {
    for (const [name, queue] of [['archive', s.stack.archiveQueue], ['notify', s.stack.notifyQueue], ['poll', s.stack.pollQueue]] as const) {
      const a = alarms()[`Video Task Gateway: a message reached the ${name[0]!.toUpperCase()}${name.slice(1)} dead-letter queue`]!;
      expect(a).toMatchObject({ MetricName: 'ApproximateNumberOfMessagesVisible', Namespace: 'AWS/SQS', Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
      expect(a.Dimensions).toEqual([{ Name: 'QueueName', Value: { 'Fn::GetAtt': [s.id(queue.deadLetterQueue), 'QueueName'] } }]);
    }
  });

  it('the failed ratio over 15 minutes above the configured threshold', () => {
    const a = alarms()['Video Task Gateway: more than 20 % of the tasks that ended in 15 minutes failed']!;
    expect(a.Threshold).toBe(0.2);
    const expression = (a.Metrics as { Expression?: string; MetricStat?: { Metric: { MetricName: string; Namespace: string }; Period: number } }[]);
    expect(expression.find((m) => m.Expression)?.Expression).toBe('IF(s + f > 0, f / (s + f), 0)');
    const names = expression.filter((m) => m.MetricStat).map((m) => [m.MetricStat!.Metric.Namespace, m.MetricStat!.Metric.MetricName, m.MetricStat!.Period]);
    expect(names).toEqual([
      [METRICS_NAMESPACE, metric.tasksSucceeded, 900],
      [METRICS_NAMESPACE, metric.tasksFailed, 900],
    ]);
    const other = synthesizeGateway({ failedRatioAlarm: 0.05 });
    other.template.hasResourceProperties('AWS::CloudWatch::Alarm', { Threshold: 0.05, AlarmDescription: Match.stringLikeRegexp('more than 5 %') });
  });

  it('any task ending in timeout, API 5xx, an upstream circuit opening', () => {
    expect(alarms()['Video Task Gateway: a task ended in timeout']).toMatchObject({
      Namespace: METRICS_NAMESPACE,
      MetricName: metric.tasksFailed,
      Dimensions: expect.arrayContaining([{ Name: 'code', Value: 'timeout' }]),
      Threshold: 0,
    });
    expect(alarms()['Video Task Gateway: the API answered 5xx']).toMatchObject({ Namespace: 'AWS/ApiGateway', MetricName: '5xx', Threshold: 0 });
    expect(alarms()['Video Task Gateway: the circuit to upstream duomi opened']).toMatchObject({
      MetricName: metric.circuitOpened,
      Dimensions: expect.arrayContaining([{ Name: 'upstream', Value: 'duomi' }]),
    });
  });
});

describe('alarm topic and dashboard', () => {
  it('the topic is TLS-only and its ARN is an output', () => {
    s.template.hasOutput('AlarmTopicArn', { Value: { Ref: topicId() } });
    const policies = resourcesOfType(s.json, 'AWS::SNS::TopicPolicy').filter(([, p]) => JSON.stringify(p.Properties!.Topics).includes(topicId()));
    expect(JSON.stringify(policies)).toContain('aws:SecureTransport');
  });

  it('one dashboard: throughput, success rate, time to video per model, queues, upstream health', () => {
    const dashboards = resourcesOfType(s.json, 'AWS::CloudWatch::Dashboard');
    expect(dashboards).toHaveLength(1);
    const body = JSON.stringify(dashboards[0]![1].Properties!.DashboardBody);
    for (const title of ['Throughput', 'Success rate', 'Time to video p50', 'Time to video p90', 'Queue depth', 'Oldest message age', 'Upstream errors', 'Upstream submit latency'])
      expect(body).toContain(title);
    for (const model of ['sora-2', 'sora-2-pro', 'sora-2-temporary']) expect(body).toContain(`\\"model\\",\\"${model}\\"`);
    expect(body).toContain('ApproximateAgeOfOldestMessage');
    s.template.hasOutput('DashboardName', {});
  });
});

describe('console route', () => {
  it('GET /console and its files go to the console Lambda', () => {
    const routes = resourcesOfType(s.json, 'AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties!.RouteKey);
    expect(routes).toEqual(expect.arrayContaining(['GET /console', 'GET /console/{file}']));
  });

  it('the OpenAPI document it serves is built at synth for the stage\'s own catalog', () => {
    const { context } = readmeWorkedExample();
    const worked = synthesizeGateway(context);
    const file = join(Stage.of(worked.stack)!.outdir, `${worked.stack.stackName}.console`, 'openapi.json');
    const doc = JSON.parse(readFileSync(file, 'utf8'));
    expect(doc.paths['/v1/videos/generations'].post).toBeDefined();
    expect(doc.components.schemas.SubmitRequest.properties.model.enum).toEqual(Object.keys(context.models));
    // Clients' document: no upstream, host or upstream model id of the stage in it.
    for (const u of context.upstreams as { name: string; baseUrl?: string }[]) {
      expect(JSON.stringify(doc)).not.toContain(`"${u.name}"`);
      if (u.baseUrl) expect(JSON.stringify(doc)).not.toContain(new URL(u.baseUrl).host);
    }
  });
});
