// The official TypeScript SDK client — what most MCP hosts and agent frameworks' JavaScript
// adapters run — against cairn over stdio, Streamable HTTP and SSE. The client validates every
// tool's schema when it lists tools and every result's structuredContent against the tool's
// outputSchema when it calls one; either failing throws.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { McpError, ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { connect, text, transports } from './lib.mjs';
import { badCalls, validCalls } from './calls.mjs';

const codes = { invalidParams: -32602, methodNotFound: -32601, resourceNotFound: -32002 };

// rpcError runs f, which must fail with a JSON-RPC error, and returns that error.
async function rpcError(f) {
  try {
    await f();
  } catch (err) {
    assert.ok(err instanceof McpError, `want a JSON-RPC error, got ${err}`);
    return err;
  }
  assert.fail('want a JSON-RPC error, got a result');
}

for (const transport of transports) {
  describe(`TypeScript SDK client over ${transport}`, () => {
    const tag = `ts_${transport}`;
    let client;
    let tools;
    before(async () => {
      client = await connect(transport);
    });
    after(async () => {
      await client?.close();
    });

    test('lists tools, resources, resource templates and prompts', async () => {
      ({ tools } = await client.listTools());
      assert.equal(tools.length, validCalls(tag).length, 'every tool is called below, once');
      for (const t of tools) {
        assert.ok(t.outputSchema, `${t.name} has an outputSchema, so its results are validated`);
      }
      const { resources } = await client.listResources();
      assert.ok(resources.some((r) => r.uri === 'cairn://tables'));
      const { resourceTemplates } = await client.listResourceTemplates();
      assert.deepEqual(resourceTemplates.map((t) => t.uriTemplate).sort(), ['cairn://tables/{schema}/{table}', 'cairn://workflows/{id}']);
      const { prompts } = await client.listPrompts();
      assert.deepEqual(prompts.map((p) => p.name).sort(), ['diagnose_slow_query', 'explore_database']);
    });

    test('calls every tool with valid arguments; the client accepts each result', async (t) => {
      assert.ok(tools, 'tools were listed');
      const state = {};
      const calls = validCalls(tag);
      assert.deepEqual(calls.map((c) => c.tool).sort(), tools.map((t) => t.name).sort());
      for (const c of calls) {
        await t.test(c.tool, async () => {
          const args = c.args(state);
          const res = await client.callTool({ name: c.tool, arguments: args });
          assert.ok(!res.isError, `${c.tool} ${JSON.stringify(args)}: ${text(res)}`);
          assert.equal(typeof res.structuredContent, 'object');
          c.check(res.structuredContent, state);
        });
      }
    });

    test('argument errors are tool errors that say what to fix', async (t) => {
      for (const c of badCalls) {
        await t.test(`${c.tool} ${JSON.stringify(c.args)}`, async () => {
          const res = await client.callTool({ name: c.tool, arguments: c.args });
          assert.equal(res.isError, true);
          const msg = text(res);
          for (const want of c.says) {
            assert.ok(msg.includes(want), `${c.tool}: error ${JSON.stringify(msg)} does not say ${want}`);
          }
        });
      }
    });

    test('reads resources; a missing one is -32002', async () => {
      const tables = await client.readResource({ uri: 'cairn://tables' });
      assert.ok(JSON.parse(tables.contents[0].text).tables.some((t) => t.name === 'workflows'));
      const wf = await client.readResource({ uri: 'cairn://tables/public/workflows' });
      assert.ok(JSON.parse(wf.contents[0].text).columns.some((c) => c.name === 'status'));
      const id = `interop-${tag}-main`;
      const res = await client.readResource({ uri: `cairn://workflows/${encodeURIComponent(id)}` });
      assert.equal(JSON.parse(res.contents[0].text).id, id);
      for (const uri of ['cairn://tables/public/no_such_table', 'cairn://workflows/no-such-workflow', 'cairn://no/such/thing']) {
        const err = await rpcError(() => client.readResource({ uri }));
        assert.equal(err.code, codes.resourceNotFound, `${uri}: ${err.message}`);
      }
    });

    test('prompts; a missing argument is -32602', async () => {
      const p = await client.getPrompt({ name: 'explore_database', arguments: { focus: 'workflows' } });
      assert.match(p.messages[0].content.text, /workflows/);
      const err = await rpcError(() => client.getPrompt({ name: 'diagnose_slow_query', arguments: {} }));
      assert.equal(err.code, codes.invalidParams, err.message);
    });

    test('completes resource-template variables and prompt arguments', async () => {
      assert.ok(client.getServerCapabilities().completions, 'completions are advertised');
      const table = { type: 'ref/resource', uri: 'cairn://tables/{schema}/{table}' };
      let { completion } = await client.complete({ ref: table, argument: { name: 'schema', value: 'pub' } });
      assert.deepEqual(completion.values, ['public']);
      ({ completion } = await client.complete({ ref: table, argument: { name: 'table', value: 'workflow_c' }, context: { arguments: { schema: 'public' } } }));
      assert.deepEqual(completion.values, ['workflow_checkpoints']);
      const workflow = { type: 'ref/resource', uri: 'cairn://workflows/{id}' };
      ({ completion } = await client.complete({ ref: workflow, argument: { name: 'id', value: `interop-${tag}-m` } }));
      assert.deepEqual(completion.values, [`interop-${tag}-main`]);
      ({ completion } = await client.complete({ ref: { type: 'ref/prompt', name: 'explore_database' }, argument: { name: 'focus', value: 'agent_e' } }));
      assert.deepEqual(completion.values, ['agent_executions']);
    });

    test('ping and logging/setLevel', async () => {
      await client.ping();
      await client.setLoggingLevel('warning');
    });

    if (transport === 'http') {
      test('stateless Streamable HTTP does not advertise subscriptions, and refuses one with -32601', async () => {
        assert.ok(!client.getServerCapabilities().resources?.subscribe);
        const err = await rpcError(() => client.subscribeResource({ uri: `cairn://workflows/interop-${tag}-main` }));
        assert.equal(err.code, codes.methodNotFound, err.message);
      });
    } else {
      test('subscribes to a workflow and is told when it changes', async () => {
        assert.equal(client.getServerCapabilities().resources?.subscribe, true);
        const id = `interop-${tag}-watched`;
        const start = await client.callTool({ name: 'workflow_start', arguments: { name: 'watched', workflow_id: id } });
        assert.ok(!start.isError, text(start));
        const uri = `cairn://workflows/${id}`;
        const updated = new Promise((resolve) => {
          client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
            if (n.params.uri === uri) resolve(n.params.uri);
          });
        });
        await client.subscribeResource({ uri });
        const res = await client.callTool({ name: 'workflow_interrupt', arguments: { workflow_id: id, reason: 'look' } });
        assert.ok(!res.isError, text(res));
        const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('no notifications/resources/updated within 15 s')), 15000).unref());
        assert.equal(await Promise.race([updated, timeout]), uri);
        await client.unsubscribeResource({ uri });
        const err = await rpcError(() => client.subscribeResource({ uri: 'cairn://workflows/no-such-workflow' }));
        assert.equal(err.code, codes.resourceNotFound, err.message);
      });
    }
  });
}
