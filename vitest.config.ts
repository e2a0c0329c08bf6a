import { defineConfig } from 'vitest/config';

// End-to-end tests build namespaces and run real traffic on a 2-core machine: run test files one
// at a time so they never compete for CPU or step on each other's timing.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 120_000,
    // In CI (CI=true) a failed test is run once more: the e2e tests share 2 cores with real kernel
    // traffic, tshark and servers, and a scheduling stall is not a product failure. A test that
    // fails twice still fails the run; locally nothing is retried, so flakes stay visible.
    retry: process.env.CI ? 1 : 0,
    hookTimeout: 180_000,
    reporters: ['default'],
  },
});
