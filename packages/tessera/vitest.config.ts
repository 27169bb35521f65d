import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    environment: 'node',
    testTimeout: 60_000,
    // Setup starts real servers (PGlite took 28 s on a busy machine): sized for a busy CI machine, not an idle one.
    hookTimeout: 120_000,
    // The default output, then one line with the total property schedules and the proof figures.
    reporters: ['default', './test/proof-totals-reporter.ts'],
  },
})
