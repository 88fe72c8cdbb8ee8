// The MCP Inspector's CLI mode, as a new user first tries a server: list the tools, call one.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { cairn, inspectorDir, nodeBin, serveArgs } from './lib.mjs';

const run = promisify(execFile);

// inspect runs the Inspector CLI against cairn over stdio and returns its JSON answer. Its cwd is
// the CLI's own folder: the CLI looks for its package.json relative to the working directory.
async function inspect(...args) {
  const { stdout } = await run(nodeBin, [path.join(inspectorDir, 'index.js'), cairn.bin, ...serveArgs, ...args], {
    cwd: inspectorDir,
    timeout: 60_000,
    maxBuffer: 16 << 20,
  }).catch((err) => {
    throw new Error(`inspector ${args.join(' ')} failed: ${err.message}\n${err.stdout ?? ''}\n${err.stderr ?? ''}`);
  });
  return JSON.parse(stdout);
}

test('MCP Inspector CLI: tools/list over stdio', async () => {
  const { tools } = await inspect('--method', 'tools/list');
  assert.ok(tools.length >= 39, `${tools.length} tools`);
  assert.ok(tools.some((t) => t.name === 'query'));
});

test('MCP Inspector CLI: tools/call query over stdio', async () => {
  const res = await inspect('--method', 'tools/call', '--tool-name', 'query', '--tool-arg', 'sql=SELECT 40 + 2 AS answer');
  assert.ok(!res.isError, JSON.stringify(res));
  assert.deepEqual(res.structuredContent.rows, [{ answer: 42 }]);
});
