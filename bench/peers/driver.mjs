// The MCP client of the peers benchmark: the official TypeScript SDK client, as MCP hosts run it.
// bench/peers.go (the Go side) starts it once and sends it one JSON request a line on stdin; it
// answers each with one JSON line on stdout. It only times calls; the Go side reads /proc and
// PostgreSQL's statistics between requests, so that every server is measured the same way.
// Logs go to stderr.
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const info = { name: 'cairn-bench-peers', version: '1' };

// The same statements, in the same order, for every server: literal SQL, as a model writes it.
const workloads = {
  // Ids spread over the table so that consecutive calls touch different pages.
  point: (i) => {
    const id = ((i * 7919) % 10000) + 1;
    return { sql: `SELECT id, name FROM bench WHERE id = ${id}`, expect: `name-${id}"` };
  },
  thousand: () => ({ sql: 'SELECT id, name FROM bench WHERE id <= 1000 ORDER BY id', expect: 'name-1000"' }),
};

let current = null; // { client, transport } of the stdio server in use
let sessions = null; // the Streamable HTTP clients in use

async function connectStdio(server) {
  // The SDK hands the server only a few of our variables (HOME, PATH, …), as in a host: each
  // server gets its database on its command line.
  const transport = new StdioClientTransport({ command: server.command, args: server.args ?? [], stderr: 'inherit' });
  const client = new Client(info);
  await client.connect(transport); // resolves once initialize is answered
  return { client, transport };
}

async function connectHTTP(url) {
  const client = new Client(info);
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

// One tool call with its check: a wrong or empty answer must not pass for a fast one.
// Returns the result as the client holds it.
async function call(client, server, workload, i) {
  const { sql, expect } = workloads[workload](i);
  const res = await client.callTool({ name: server.tool, arguments: { [server.arg ?? 'sql']: sql } });
  const text = (res.content ?? []).map((c) => c.text ?? '').join('');
  if (res.isError || !text.includes(expect)) {
    throw new Error(`${server.name} ${workload}: unexpected result: ${text.slice(0, 300)}`);
  }
  return res;
}

const ops = {
  // Spawn the server and list its tools, as a host does before it calls one.
  async spawn({ server }) {
    if (current) throw new Error('a server is already running');
    current = await connectStdio(server);
    const { tools } = await current.client.listTools();
    if (!tools.some((t) => t.name === server.tool)) {
      throw new Error(`${server.name} has no tool ${server.tool}: ${tools.map((t) => t.name).join(', ')}`);
    }
    return { pid: current.transport.pid };
  },

  // n calls one after another; the latency of each, client send → result accepted, in ms, and
  // the size of the last result as JSON (what the server sent, give or take white space).
  async calls({ server, workload, n, from = 0 }) {
    const ms = new Array(n);
    let res;
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      res = await call(current.client, server, workload, from + i);
      ms[i] = performance.now() - t;
    }
    return { ms, bytes: res ? JSON.stringify(res).length : 0 };
  },

  async close() {
    if (current) await current.client.close();
    current = null;
    return {};
  },

  // n cold starts: spawn → initialize answered, each server closed before the next one.
  async starts({ server, n }) {
    const ms = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      const c = await connectStdio(server);
      ms.push(performance.now() - t);
      await c.client.close();
    }
    return { ms };
  },

  // Streamable HTTP: open clients concurrent sessions (initialize, tools/list, one warm-up call
  // each) before the clock starts, so that the Go side can read the counters in between.
  async httpOpen({ server, url, clients }) {
    if (sessions) throw new Error('sessions are already open');
    sessions = await Promise.all(Array.from({ length: clients }, () => connectHTTP(url)));
    await Promise.all(sessions.map((c) => c.listTools()));
    await Promise.all(sessions.map((c) => call(c, server, 'point', 0)));
    return {};
  },

  // Every session calls point lookups back to back for seconds.
  async httpRun({ server, seconds }) {
    const ms = [];
    const start = performance.now();
    const end = start + seconds * 1000;
    await Promise.all(
      sessions.map(async (c, k) => {
        for (let i = k; performance.now() < end; i += sessions.length) {
          const t = performance.now();
          await call(c, server, 'point', i);
          ms.push(performance.now() - t);
        }
      }),
    );
    return { calls: ms.length, seconds: (performance.now() - start) / 1000, ms };
  },

  async httpClose() {
    if (sessions) await Promise.all(sessions.map((c) => c.close()));
    sessions = null;
    return {};
  },
};

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let reply;
  try {
    const req = JSON.parse(line);
    reply = { ok: true, ...(await ops[req.op](req)) };
  } catch (err) {
    reply = { ok: false, error: String(err?.stack ?? err) };
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
}
if (current) await current.client.close();
