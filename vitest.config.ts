import { defineConfig } from 'vitest/config';

// End-to-end tests build namespaces and run real traffic on a 2-core machine: run test files one
// at a time so they never compete for CPU or step on each other's timing.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
    reporters: ['default'],
  },
});
