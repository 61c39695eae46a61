import { Duration } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, METRICS_SERVICE, metric, type Dimensions, type MetricName } from '../lambdas/shared/metrics';

export interface MonitoredQueue {
  readonly name: string;
  readonly queue: sqs.IQueue;
  readonly deadLetterQueue: sqs.IQueue;
}

export interface GatewayMonitoringProps {
  readonly queues: readonly MonitoredQueue[];
  readonly api: apigw.IHttpApi;
  /** Catalog model ids, for the per-model panels. */
  readonly models: readonly string[];
  /** Upstream names, for the per-upstream alarms and panels. */
  readonly upstreams: readonly string[];
  /** Alarm when more than this share of the tasks that ended in 15 minutes failed (0..1). */
  readonly failedRatioThreshold: number;
  /** Server-side encryption of the alarm topic. */
  readonly topicKey?: sns.TopicProps['masterKey'];
}

const FIFTEEN_MINUTES = Duration.minutes(15);

/**
 * Alarms to one SNS topic, and one dashboard. The gateway's own figures come from
 * lambdas/shared/metrics.ts (EMF, namespace VideoTaskGateway); queue and API figures are
 * AWS's own.
 */
export class GatewayMonitoring extends Construct {
  readonly alarmTopic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: GatewayMonitoringProps) {
    super(scope, id);
    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      displayName: 'Video Task Gateway alarms',
      enforceSSL: true,
      masterKey: props.topicKey,
    });
    const alarm = (name: string, description: string, m: cloudwatch.IMetric, threshold: number) => {
      const a = new cloudwatch.Alarm(this, name, {
        alarmDescription: `Video Task Gateway: ${description}`,
        metric: m,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        // No data is no trouble: a quiet gateway emits nothing.
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
      a.addAlarmAction(new actions.SnsAction(this.alarmTopic));
      a.addOkAction(new actions.SnsAction(this.alarmTopic));
      this.alarms.push(a);
      return a;
    };

    for (const q of props.queues)
      alarm(
        `${q.name}DeadLetters`,
        `a message reached the ${q.name} dead-letter queue`,
        q.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
        0,
      );

    const succeeded = gatewayMetric(metric.tasksSucceeded, {}, FIFTEEN_MINUTES);
    const failed = gatewayMetric(metric.tasksFailed, {}, FIFTEEN_MINUTES);
    alarm(
      'FailedRatio',
      `more than ${Math.round(props.failedRatioThreshold * 100)} % of the tasks that ended in 15 minutes failed`,
      new cloudwatch.MathExpression({
        expression: 'IF(s + f > 0, f / (s + f), 0)',
        usingMetrics: { s: succeeded, f: failed },
        period: FIFTEEN_MINUTES,
        label: 'failed ratio',
      }),
      props.failedRatioThreshold,
    );
    alarm('TaskTimeouts', 'a task ended in timeout', gatewayMetric(metric.tasksFailed, { code: 'timeout' }, Duration.minutes(5)), 0);
    alarm(
      'Api5xx',
      'the API answered 5xx',
      new cloudwatch.Metric({
        namespace: 'AWS/ApiGateway',
        metricName: '5xx',
        dimensionsMap: { ApiId: props.api.apiId, Stage: '$default' },
        statistic: 'Sum',
        period: Duration.minutes(5),
      }),
      0,
    );
    for (const upstream of props.upstreams)
      alarm(
        `Circuit${pascal(upstream)}`,
        `the circuit to upstream ${upstream} opened`,
        gatewayMetric(metric.circuitOpened, { upstream }, Duration.minutes(5)),
        0,
      );

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(6) });
    const graph = (title: string, left: cloudwatch.IMetric[], extra: Partial<cloudwatch.GraphWidgetProps> = {}) =>
      new cloudwatch.GraphWidget({ title, left, width: 12, height: 6, ...extra });
    const five = Duration.minutes(5);
    this.dashboard.addWidgets(
      graph('Throughput (tasks per 5 minutes)', [
        gatewayMetric(metric.tasksSubmitted, {}, five, 'submitted'),
        gatewayMetric(metric.tasksSucceeded, {}, five, 'succeeded'),
        gatewayMetric(metric.tasksFailed, {}, five, 'failed'),
      ]),
      graph(
        'Success rate',
        [
          new cloudwatch.MathExpression({
            expression: 'IF(s + f > 0, 100 * s / (s + f), 100)',
            usingMetrics: { s: gatewayMetric(metric.tasksSucceeded, {}, five), f: gatewayMetric(metric.tasksFailed, {}, five) },
            period: five,
            label: 'succeeded %',
          }),
        ],
        { leftYAxis: { min: 0, max: 100 } },
      ),
    );
    this.dashboard.addWidgets(
      graph(
        'Time to video p50 (s)',
        props.models.map((model) => gatewayMetric(metric.timeToVideo, { model }, five, model, 'p50')),
      ),
      graph(
        'Time to video p90 (s)',
        props.models.map((model) => gatewayMetric(metric.timeToVideo, { model }, five, model, 'p90')),
      ),
    );
    this.dashboard.addWidgets(
      graph(
        'Queue depth',
        props.queues.flatMap((q) => [
          q.queue.metricApproximateNumberOfMessagesVisible({ period: five, label: q.name }),
          q.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: five, label: `${q.name} dead letters` }),
        ]),
      ),
      graph(
        'Oldest message age (s)',
        props.queues.map((q) => q.queue.metricApproximateAgeOfOldestMessage({ period: five, label: q.name })),
      ),
    );
    this.dashboard.addWidgets(
      graph(
        'Upstream errors and circuit openings',
        props.upstreams.flatMap((upstream) => [
          gatewayMetric(metric.upstreamErrors, { upstream }, five, `${upstream} errors`),
          gatewayMetric(metric.circuitOpened, { upstream }, five, `${upstream} circuit opened`),
        ]),
      ),
      graph(
        'Upstream submit latency p90 (ms)',
        props.upstreams.map((upstream) => gatewayMetric(metric.upstreamSubmitLatency, { upstream }, five, upstream, 'p90')),
      ),
    );
  }
}

/** A gateway metric as Powertools publishes it: the service dimension, plus at most one more. */
export function gatewayMetric(name: MetricName, dimension: Dimensions, period: Duration, label?: string, statistic = 'Sum') {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName: name,
    dimensionsMap: { service: METRICS_SERVICE, ...(dimension as Record<string, string>) },
    statistic,
    period,
    label,
  });
}

const pascal = (s: string) => s.replace(/(^|[^A-Za-z0-9])([A-Za-z0-9])/g, (_m, _sep, c: string) => c.toUpperCase());
