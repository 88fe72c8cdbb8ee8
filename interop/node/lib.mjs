// Shared by the interop tests: where cairn is (set by interop_test.go) and how each client
// reaches it. Nothing here speaks MCP itself: the clients under test do.
import assert from 'node:assert/strict';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';

function required(name) {
  const v = process.env[name];
  assert.ok(v, `${name} is not set: run these tests through go test ./interop/`);
  return v;
}

export const cairn = {
  bin: required('CAIRN_BIN'),
  databaseURL: required('CAIRN_DATABASE_URL'),
  httpURL: required('CAIRN_HTTP_URL'), // a running `cairn serve --transport http`
};

// modules is the node_modules folder the pinned clients were installed into.
export const modules = required('CAIRN_INTEROP_MODULES');
export const nodeBin = process.execPath;
export const conformanceCLI = path.join(modules, '@modelcontextprotocol/conformance/dist/index.js');
export const inspectorDir = path.join(modules, '@modelcontextprotocol/inspector-cli/build');

export const transports = ['stdio', 'http', 'sse'];

// serveArgs are the arguments that start cairn over stdio on the test database.
export const serveArgs = ['serve', '--no-migrate', '--database-url', cairn.databaseURL];

function transportFor(kind) {
  switch (kind) {
    case 'stdio':
      return new StdioClientTransport({ command: cairn.bin, args: serveArgs, stderr: 'inherit' });
    case 'http':
      return new StreamableHTTPClientTransport(new URL('/mcp', cairn.httpURL));
    case 'sse':
      return new SSEClientTransport(new URL('/sse', cairn.httpURL));
  }
  throw new Error(`unknown transport ${kind}`);
}

// connect connects the official TypeScript SDK client to cairn over a transport.
export async function connect(kind, { onNotification } = {}) {
  const client = new Client({ name: 'cairn-interop', version: '1.0.0' }, { capabilities: {} });
  if (onNotification) {
    client.fallbackNotificationHandler = async (n) => onNotification(n);
  }
  await client.connect(transportFor(kind));
  return client;
}

// text is the text content of a tool result.
export function text(res) {
  return (res.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
}
