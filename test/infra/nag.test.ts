import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks, NagPack } from 'cdk-nag';
import { afterAll, describe, expect, it } from 'vitest';
import { GatewayStack } from '../../lib/gateway-stack';
import { parseStageConfig } from '../../lib/stage-config';
import { cdkJsonContext } from '../../lib/cdk-context';
import { skipBundlingContext } from '../../lib/synthesize-template';
import { readmeWorkedExample } from './support';

/**
 * cdk-nag 3 runs as a CDK validation plugin: `app.synth()` writes its findings (what the
 * acknowledgements leave) to `validation-report.json` in the cloud assembly, prints them,
 * and fails on errors (in tests, CDK throws with the report as its message).
 */

const outdirs: string[] = [];
afterAll(() => outdirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function appWithChecks(): App {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtg-nag-'));
  outdirs.push(outdir);
  const app = new App({ outdir, context: { ...cdkJsonContext(), ...skipBundlingContext }, builtinCloudFormationValidation: false });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return app;
}

interface Report {
  pluginReports: { pluginName: string; violations: { ruleName: string; severity: string }[] }[];
}

const readReport = (dir: string): Report =>
  JSON.parse(fs.readFileSync(path.join(dir, 'validation-report.json'), 'utf8')) as Report;

describe('cdk-nag AwsSolutions', () => {
  it('finds no unacknowledged error or warning in the gateway stack', () => {
    const app = appWithChecks();
    new GatewayStack(app, 'VideoTaskGateway', { config: parseStageConfig({}) });
    const assembly = app.synth(); // throws on unacknowledged errors
    const violations = readReport(assembly.directory)
      .pluginReports.filter((r) => r.pluginName === 'AwsSolutions')
      .flatMap((r) => r.violations.map((v) => `${v.severity} ${v.ruleName}`));
    expect(violations).toEqual([]);
  });

  it('also with an existing upstream key secret', () => {
    const app = appWithChecks();
    new GatewayStack(app, 'VideoTaskGateway', {
      config: parseStageConfig({
        upstreamKeySecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:duomi-key-AbC123',
      }),
    });
    expect(() => app.synth()).not.toThrow();
  });

  it('does run: an unacknowledged finding next to the gateway fails synthesis, and only that one', () => {
    const app = appWithChecks();
    new GatewayStack(app, 'VideoTaskGateway', { config: parseStageConfig({}) });
    const other = new Stack(app, 'Other');
    new sqs.Queue(other, 'NoDeadLetterQueue', { enforceSSL: true, encryption: sqs.QueueEncryption.SQS_MANAGED });
    let message = '';
    try {
      app.synth();
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/AwsSolutions-SQS3/);
    expect(message).toMatch(/Other\/NoDeadLetterQueue/);
    expect(message).not.toMatch(/VideoTaskGateway\//);
  });

  it('also with the README’s worked example (resellers, duomi, Bedrock)', () => {
    const app = appWithChecks();
    new GatewayStack(app, 'VideoTaskGateway', { config: parseStageConfig(readmeWorkedExample().context) });
    expect(() => app.synth()).not.toThrow();
  });

  it.each([
    ['the default stage', {}],
    ['the worked example', readmeWorkedExample().context],
  ])('every acknowledgement answers a finding that is really there, and says why: %s', (_, stageConfig) => {
    const app = new App({ context: { ...cdkJsonContext(), ...skipBundlingContext } });
    const stack = new GatewayStack(app, 'VideoTaskGateway', { config: parseStageConfig(stageConfig) });

    // The raw findings, as if nothing were acknowledged.
    const proto = NagPack.prototype as unknown as { isAcknowledged: unknown };
    const original = proto.isAcknowledged;
    proto.isAcknowledged = () => false;
    let raw: { rule: string; path: string }[];
    try {
      raw = new AwsSolutionsChecks().validateScope(stack).violations.flatMap((v) =>
        v.violatingResources.map((r) => ({ rule: v.ruleName, path: r.constructPath ?? '' })),
      );
    } finally {
      proto.isAcknowledged = original;
    }

    const acknowledgements = stack.node.findAll().flatMap((c) =>
      c.node.metadata
        .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
        .flatMap((m) =>
          Object.entries(m.data as Record<string, string>).map(([id, reason]) => ({
            at: c.node.path,
            rule: id.replace(/^annotation::/i, ''),
            reason,
          })),
        ),
    );
    expect(acknowledgements.length).toBeGreaterThan(0);
    for (const ack of acknowledgements) {
      expect(ack.reason.length, `${ack.rule} at ${ack.at} needs a reason`).toBeGreaterThan(40);
      const answered = raw.some((f) => f.rule === ack.rule && (f.path === ack.at || f.path.startsWith(`${ack.at}/`)));
      expect(answered, `${ack.rule} at ${ack.at} acknowledges nothing`).toBe(true);
    }
    // Acknowledged on the construct concerned, never on the whole stack.
    expect(acknowledgements.map((a) => a.at)).not.toContain(stack.node.path);
  });
});
