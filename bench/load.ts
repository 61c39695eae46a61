import { parseArgs } from 'node:util';
import { formatLoadReport, runLoad } from './load-run';

/**
 * `npm run load [-- --connections 50 --duration 30 --fail-submit-rate 0.2 --drop-callback-rate 0.2
 * --fail-render-rate 0.05 --render-ms 300 --seed 1 --drain-timeout 120]`: the load test of
 * issue 3 against a fresh local gateway. Prints the figures; exits 1 when an invariant breaks.
 */
const { values } = parseArgs({
  options: {
    connections: { type: 'string', short: 'c', default: '50' },
    duration: { type: 'string', short: 'd', default: '30' },
    'fail-submit-rate': { type: 'string', default: '0.2' },
    'drop-callback-rate': { type: 'string', default: '0.2' },
    'fail-render-rate': { type: 'string', default: '0.05' },
    'render-ms': { type: 'string', default: '300' },
    seed: { type: 'string', default: '1' },
    'drain-timeout': { type: 'string', default: '120' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  process.stdout.write(
    'usage: npm run load -- [--connections N] [--duration S] [--fail-submit-rate R] [--drop-callback-rate R]\n' +
      '                      [--fail-render-rate R] [--render-ms MS] [--seed N] [--drain-timeout S] [--json]\n',
  );
  process.exit(0);
}

function number(name: keyof typeof values, min: number, max: number): number {
  const n = Number(values[name]);
  if (!Number.isFinite(n) || n < min || n > max) {
    process.stderr.write(`--${name} must be a number from ${min} to ${max}, got ${String(values[name])}\n`);
    process.exit(2);
  }
  return n;
}

const started = Date.now();
const report = await runLoad({
  connections: number('connections', 1, 1000),
  durationSeconds: number('duration', 1, 600),
  failSubmitRate: number('fail-submit-rate', 0, 1),
  dropCallbackRate: number('drop-callback-rate', 0, 1),
  failRenderRate: number('fail-render-rate', 0, 1),
  renderMs: number('render-ms', 1, 600_000),
  seed: number('seed', 0, 2 ** 32 - 1),
  drainTimeoutMs: number('drain-timeout', 1, 3600) * 1000,
  log: (line) => process.stderr.write(`${line}\n`),
});
process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatLoadReport(report)}\n`);
process.stderr.write(`total ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
process.exit(report.violations.length === 0 ? 0 : 1);
