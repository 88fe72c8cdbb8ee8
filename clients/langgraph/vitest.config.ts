import { defineConfig } from "vitest/config";

// The validation suite registers its tests through vitest's globals, and every test file talks
// to the one cairn the Go test started: one file at a time.
export default defineConfig({
  test: {
    globals: true,
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    include: ["test/**/*.test.ts"],
  },
});
