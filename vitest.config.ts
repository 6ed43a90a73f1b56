import { configDefaults, defineConfig } from "vitest/config";

// One suite, run by `npm test`. Integration and container tests start real nats-server
// processes, LevelDB directories and containers, so they get generous timeouts; speed is
// measured in bench/, never asserted here.
//
// Two projects: `verify` (test/linearizability/verify.test.ts: a real 3-node cluster under
// faults for a minute and more) runs after everything else (a later sequence.groupOrder), so
// its load does not skew the timing of the other tests on two cores.
const VERIFY_TESTS = ["test/linearizability/verify.test.ts"];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: integration tests that each start a cluster must not trample each other.
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ["default"],
    projects: [
      {
        extends: true,
        test: { name: "main", include: ["test/**/*.test.ts"], exclude: [...configDefaults.exclude, ...VERIFY_TESTS], sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: "verify", include: VERIFY_TESTS, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
