import { defineConfig } from "vitest/config";

// One suite, run by `npm test`. Integration and container tests start real nats-server
// processes, LevelDB directories and containers, so they get generous timeouts; speed is
// measured in bench/, never asserted here.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: integration tests that each start a cluster must not trample each other.
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ["default"],
  },
});
