// Every tool's schemas as the MCP specification wants them: valid JSON Schema 2020-12 (checked
// against the meta-schema by Ajv in strict mode), an object at the top, and no boolean schema
// where a property's schema goes — the TypeScript SDK rejects the whole tool list for one. The
// list is read as sent, over plain JSON-RPC on stdio, so that no client's own checks stand
// between cairn and these.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { before, test } from 'node:test';
import Ajv2020 from 'ajv/dist/2020.js';
import { cairn, serveArgs } from './lib.mjs';

// rawToolsList starts cairn over stdio, initializes a session and returns tools/list's tools.
async function rawToolsList() {
  const proc = spawn(cairn.bin, serveArgs, { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
  const send = (msg) => proc.stdin.write(JSON.stringify({ jsonrpc: '2.0', ...msg }) + '\n');
  const answer = async (id) => {
    for (;;) {
      const { value, done } = await lines.next();
      assert.ok(!done, `cairn closed stdout before answering request ${id}`);
      const msg = JSON.parse(value);
      if (msg.id === id) {
        assert.ok(!msg.error, JSON.stringify(msg.error));
        return msg.result;
      }
    }
  };
  try {
    send({ id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'schema-check', version: '1' } } });
    await answer(1);
    send({ method: 'notifications/initialized' });
    send({ id: 2, method: 'tools/list' });
    return (await answer(2)).tools;
  } finally {
    proc.stdin.end();
    proc.kill();
  }
}

let tools;
before(async () => {
  tools = await rawToolsList();
});

// subschemas yields each schema below s with its path, and whether it stands where a property's
// schema does.
function* subschemas(s, path) {
  if (s === null || typeof s !== 'object') return;
  for (const [k, v] of Object.entries(s.properties ?? {})) {
    yield [v, `${path}.properties.${k}`];
    yield* subschemas(v, `${path}.properties.${k}`);
  }
  for (const key of ['items', 'additionalProperties', 'not', 'contains', 'propertyNames']) {
    if (key in s) {
      yield [s[key], `${path}.${key}`];
      yield* subschemas(s[key], `${path}.${key}`);
    }
  }
  for (const key of ['anyOf', 'oneOf', 'allOf', 'prefixItems']) {
    for (const [i, v] of (s[key] ?? []).entries()) {
      yield [v, `${path}.${key}[${i}]`];
      yield* subschemas(v, `${path}.${key}[${i}]`);
    }
  }
}

test('every tool has valid JSON Schema 2020-12 input and output schemas, objects all the way down', async (t) => {
  assert.ok(tools.length > 0);
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  for (const tool of tools) {
    await t.test(tool.name, () => {
      for (const [kind, schema] of [['inputSchema', tool.inputSchema], ['outputSchema', tool.outputSchema]]) {
        assert.ok(schema, `${kind} is missing`);
        assert.equal(schema.type, 'object', `${kind}.type`);
        assert.ok(ajv.validateSchema(schema), `${kind}: ${ajv.errorsText(ajv.errors)}`);
        ajv.compile(schema); // strict mode: unknown keywords and contradictions throw
        for (const [sub, where] of subschemas(schema, kind)) {
          // additionalProperties: false keeps argument objects strict; nothing else is boolean.
          if (sub === false && where.endsWith('.additionalProperties')) continue;
          assert.equal(typeof sub, 'object', `${where} is ${JSON.stringify(sub)}, not a schema object`);
          assert.notEqual(sub, null, where);
        }
      }
    });
  }
});

test('argument objects refuse unknown names (additionalProperties: false)', () => {
  for (const tool of tools) {
    assert.equal(tool.inputSchema.additionalProperties, false, tool.name);
  }
});
