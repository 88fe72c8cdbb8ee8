// The official MCP conformance suite in server mode against cairn's Streamable HTTP endpoint:
// every server scenario that does not need the SDKs' fixture tools, prompts or resources.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { cairn, conformanceCLI, nodeBin } from './lib.mjs';

const run = promisify(execFile);

export const scenarios = [
  'server-initialize',
  'ping',
  'tools-list',
  'resources-list',
  'prompts-list',
  'logging-set-level',
  'completion-complete',
  'dns-rebinding-protection',
];

for (const scenario of scenarios) {
  test(`conformance ${scenario}`, async () => {
    const url = new URL('/mcp', cairn.httpURL).href;
    const { stdout } = await run(nodeBin, [conformanceCLI, 'server', '--url', url, '--scenario', scenario], {
      timeout: 120_000,
      maxBuffer: 16 << 20,
      env: { ...process.env, NO_COLOR: '1' },
    }).catch((err) => {
      throw new Error(`conformance ${scenario} failed:\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
    });
    const summary = stdout.match(/Passed: (\d+)\/(\d+), (\d+) failed/);
    assert.ok(summary, `no summary in the output:\n${stdout}`);
    assert.equal(summary[3], '0', stdout);
    assert.equal(summary[1], summary[2], stdout);
  });
}
