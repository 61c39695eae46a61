import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each integration file runs its own local gateway (handlers read config once per process).
    pool: 'forks',
    testTimeout: 20_000,
    // Metrics go to stdout as EMF in AWS; tests read them where they test them (test/unit/metrics.test.ts).
    env: { POWERTOOLS_METRICS_DISABLED: 'true' },
    hookTimeout: 60_000,
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
