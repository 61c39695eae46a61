import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { routeKey, type LambdaName, type Route } from '../lambdas/shared/routes';

/** One JSON object per request in the access log. */
export const accessLogFields = {
  requestId: '$context.requestId',
  ip: '$context.identity.sourceIp',
  requestTime: '$context.requestTime',
  httpMethod: '$context.httpMethod',
  path: '$context.path',
  routeKey: '$context.routeKey',
  status: '$context.status',
  protocol: '$context.protocol',
  responseLength: '$context.responseLength',
  latency: '$context.responseLatency',
  integrationLatency: '$context.integrationLatency',
  integrationError: '$context.integrationErrorMessage',
  error: '$context.error.message',
  userAgent: '$context.identity.userAgent',
} as const;

export interface GatewayHttpApiProps {
  readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  readonly logRetention: logs.RetentionDays;
}

/**
 * The public HTTP API: a `$default` stage with throttling and JSON access logs. Routes are
 * added from the shared route table once the Lambdas exist (`addRoutes`); the Lambdas in
 * turn learn the API's URL, which is why the API is created first.
 */
export class GatewayHttpApi extends Construct {
  readonly api: apigw.HttpApi;
  readonly stage: apigw.HttpStage;
  readonly accessLogs: logs.LogGroup;

  constructor(scope: Construct, id: string, props: GatewayHttpApiProps) {
    super(scope, id);

    this.api = new apigw.HttpApi(this, 'Api', {
      description: 'Video Task Gateway: Sora-2 style asynchronous video generation API',
      // The stage is defined below, with throttling and access logs.
      createDefaultStage: false,
    });
    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.stage = new apigw.HttpStage(this, 'DefaultStage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: props.throttle,
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(this.accessLogs),
        format: AccessLogFormat.custom(JSON.stringify(accessLogFields)),
      },
    });
  }

  /** The API's base URL without a trailing slash; the `$default` stage serves at its root. */
  get url(): string {
    return this.api.apiEndpoint;
  }

  /** One route per entry of the table, plus `$default` so unmatched requests get the gateway's JSON 404. */
  addRoutes(
    routes: readonly Route[],
    defaultLambda: LambdaName,
    functions: Record<LambdaName, lambda.IFunction>,
  ) {
    const scope = new Construct(this, 'Routes');
    Validations.of(scope).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        "Clients authenticate with the gateway's own API keys (Authorization header, checked against hashes in DynamoDB by the Lambda), and upstream callbacks with an HMAC token in the URL; no API Gateway authorizer applies.",
    });
    const integrations = new Map<LambdaName, HttpLambdaIntegration>();
    // One integration per Lambda, shared by its routes (CDK adds an invoke permission per route).
    const integrationFor = (name: LambdaName) => {
      let integration = integrations.get(name);
      if (!integration) {
        integration = new HttpLambdaIntegration(`${name}-integration`, functions[name]);
        integrations.set(name, integration);
      }
      return integration;
    };
    for (const route of routes) {
      new apigw.HttpRoute(scope, routeKey(route).replace(/[^A-Za-z0-9]+/g, '-').replace(/-$/, ''), {
        httpApi: this.api,
        routeKey: apigw.HttpRouteKey.with(route.path, apigw.HttpMethod[route.method]),
        integration: integrationFor(route.lambda),
      });
    }
    new apigw.HttpRoute(scope, 'default', {
      httpApi: this.api,
      routeKey: apigw.HttpRouteKey.DEFAULT,
      integration: integrationFor(defaultLambda),
    });
  }
}
