// One valid call of every cairn tool, in an order in which each finds what it needs (a workflow
// to checkpoint, a table to search), and what a caller would check of its result. tag keeps the
// names of one run apart from another's on the same database.
import assert from 'node:assert/strict';

export function validCalls(tag) {
  const vec = `interop_vec_${tag}`;
  const wf = `interop-${tag}-main`;
  const agent = `interop-${tag}-agent`;
  const error = `InteropError ${tag}`;
  return [
    // generic
    { tool: 'server_info', args: () => ({}), check: (o) => assert.equal(o.name, 'cairn') },
    { tool: 'db_identity', args: () => ({}), check: (o) => assert.ok(o.database) },
    { tool: 'list_schemas', args: () => ({}), check: (o) => assert.ok(o.schemas.some((s) => s.name === 'public')) },
    { tool: 'list_tables', args: () => ({ schema: 'public' }), check: (o) => assert.ok(o.tables.some((t) => t.name === 'workflows')) },
    { tool: 'describe_table', args: () => ({ table: 'workflows' }), check: (o) => assert.ok(o.columns.some((c) => c.name === 'status')) },
    { tool: 'get_indexes', args: () => ({ table: 'workflows' }), check: (o) => assert.ok(o.indexes.length > 0) },
    { tool: 'get_foreign_keys', args: () => ({ table: 'workflow_steps' }), check: (o) => assert.ok(Array.isArray(o.foreign_keys)) },
    { tool: 'find_relationships', args: () => ({ table: 'workflows' }), check: (o) => assert.ok(Array.isArray(o.referenced_by)) },
    {
      tool: 'execute',
      args: () => ({ sql: `CREATE TABLE ${vec} (id bigserial PRIMARY KEY, name text NOT NULL, kind text, embedding vector(3))` }),
      check: (o) => assert.equal(o.command, 'CREATE TABLE'),
    },
    {
      tool: 'transaction',
      args: () => ({
        statements: [
          { sql: `INSERT INTO ${vec} (name, kind, embedding) VALUES ($1, $2, $3) RETURNING id`, params: ['first', 'x', [1, 0, 0]], as: 'first' },
          { sql: `UPDATE ${vec} SET kind = $1 WHERE id = $2`, params: ['y', '{first}'] },
        ],
      }),
      check: (o) => {
        assert.equal(o.committed, true);
        assert.equal(o.results[1].rows_affected, 1);
      },
    },
    {
      tool: 'insert_vector',
      args: () => ({ table: vec, columns: { name: 'second', kind: 'x' }, embedding_column: 'embedding', embedding: [0, 1, 0] }),
      check: (o) => assert.equal(o.rows_affected, 1),
    },
    {
      tool: 'vector_search',
      args: () => ({ table: vec, embedding_column: 'embedding', query_embedding: [1, 0.1, 0], limit: 2, where_clause: "kind <> 'z'" }),
      check: (o) => assert.equal(o.rows[0].name, 'first'),
    },
    {
      tool: 'query',
      args: () => ({ sql: `SELECT name, kind, embedding FROM ${vec} WHERE name = $1`, params: ['first'] }),
      check: (o) => assert.deepEqual(o.rows, [{ name: 'first', kind: 'y', embedding: [1, 0, 0] }]),
    },
    // checkpoint
    {
      tool: 'workflow_start',
      args: () => ({ name: 'interop', workflow_id: wf, input: { service: 'nginx' }, metadata: { tag } }),
      check: (o, s) => {
        assert.equal(o.id, wf);
        s.version = o.version;
      },
    },
    {
      tool: 'checkpoint_save',
      args: (s) => ({ workflow_id: wf, node_id: 'plan', state: { messages: ['hello'], plan: 'deploy' }, expected_version: s.version, idempotency_key: `${tag}-save` }),
      check: (o, s) => {
        assert.ok(o.checkpoint_id);
        s.checkpoint = o.checkpoint_id;
      },
    },
    {
      tool: 'checkpoint_put_writes',
      args: (s) => ({ workflow_id: wf, checkpoint_id: s.checkpoint, task_id: 'task-1', writes: [{ channel: 'messages', value: ['world'] }] }),
      check: (o) => assert.equal(o.written, 1),
    },
    {
      tool: 'checkpoint_load',
      args: () => ({ workflow_id: wf }),
      check: (o) => {
        assert.equal(o.state.plan, 'deploy');
        assert.deepEqual(o.pending_writes.map((w) => [w.task_id, w.channel]), [['task-1', 'messages']]);
      },
    },
    { tool: 'checkpoint_list', args: () => ({ workflow_id: wf, limit: 10 }), check: (o) => assert.equal(o.checkpoints.length, 1) },
    {
      tool: 'workflow_interrupt',
      args: () => ({ workflow_id: wf, reason: 'needs approval', payload: { question: 'Deploy?' } }),
      check: (o) => assert.equal(o.status, 'interrupted'),
    },
    { tool: 'workflow_list', args: () => ({ status: 'interrupted' }), check: (o) => assert.ok(o.workflows.some((w) => w.id === wf)) },
    { tool: 'workflow_resume', args: () => ({ workflow_id: wf, response: 'Approve' }), check: (o) => assert.equal(o.response, 'Approve') },
    { tool: 'workflow_get', args: () => ({ workflow_id: wf }), check: (o) => assert.equal(o.status, 'running') },
    { tool: 'workflow_history', args: () => ({ workflow_id: wf }), check: (o) => assert.ok(o.events.length >= 4) },
    {
      tool: 'workflow_fork',
      args: (s) => ({ workflow_id: wf, checkpoint_id: s.checkpoint, name: 'interop-retry' }),
      check: (o, s) => {
        assert.notEqual(o.workflow.id, wf);
        s.fork = o.workflow.id;
      },
    },
    { tool: 'workflow_complete', args: () => ({ workflow_id: wf, output: { deployed: true } }), check: (o) => assert.equal(o.status, 'completed') },
    { tool: 'workflow_fail', args: (s) => ({ workflow_id: s.fork, error: 'deploy timed out' }), check: (o) => assert.equal(o.status, 'failed') },
    { tool: 'workflow_delete', args: (s) => ({ workflow_id: s.fork }), check: (o) => assert.equal(o.deleted, true) },
    // agents
    {
      tool: 'agent_register',
      args: () => ({ agent_id: agent, name: 'researcher #1', template: `researcher-${tag}`, metadata: { team: 'search' } }),
      check: (o) => assert.equal(o.state, 'registered'),
    },
    { tool: 'agent_update', args: () => ({ agent_id: agent, state: 'running', metadata: { shift: 'night' } }), check: (o) => assert.equal(o.state, 'running') },
    { tool: 'agent_get', args: () => ({ agent_id: agent }), check: (o) => assert.equal(o.metadata.team, 'search') },
    { tool: 'agent_list', args: () => ({ template: `researcher-${tag}` }), check: (o) => assert.equal(o.agents.length, 1) },
    {
      tool: 'agent_record_execution',
      args: () => ({ agent_id: agent, workflow_id: wf, tokens_in: 1200, tokens_out: 300, duration_ms: 4200, cost_usd: 0.0135, outcome: 'success' }),
      check: (o) => assert.equal(o.agent_tokens_used, 1500),
    },
    { tool: 'agent_metrics', args: () => ({ agent_id: agent, bucket: 'hour' }), check: (o) => assert.equal(o.totals.executions, 1) },
    // knowledge
    {
      tool: 'knowledge_upsert_entity',
      args: () => ({ name: error, entity_type: 'error', summary: 'numpy missing at dashboard start', attributes: { severity: 'high' } }),
      check: (o) => assert.equal(o.created, true),
    },
    {
      tool: 'knowledge_add_episode',
      args: () => ({
        name: 'dashboard-startup-failure',
        content: `${error}: No module named numpy when the dashboard starts`,
        episode_type: 'error',
        entities: [{ name: error, entity_type: 'error' }, { name: `dashboard-${tag}`, entity_type: 'service' }],
        idempotency_key: `${tag}-episode`,
      }),
      check: (o) => assert.equal(o.mentions.length, 2),
    },
    {
      tool: 'knowledge_relate',
      args: () => ({ source: error, source_type: 'error', relation_type: 'fixed_by', target: `pin numpy ${tag}`, target_type: 'fix', fact: 'pinning numpy fixed it' }),
      check: (o) => assert.equal(o.created, true),
    },
    { tool: 'knowledge_get', args: () => ({ name: error, entity_type: 'error' }), check: (o) => assert.equal(o.entity.relations.length, 1) },
    {
      tool: 'knowledge_neighbors',
      args: () => ({ entity: error, entity_type: 'error', depth: 2 }),
      check: (o) => assert.ok(o.neighbors.some((n) => n.name === `pin numpy ${tag}`), JSON.stringify(o.neighbors)),
    },
    {
      tool: 'knowledge_search',
      args: () => ({ query: `${error} numpy`, mode: 'keyword', limit: 5 }),
      check: (o) => assert.ok(o.results.length > 0),
    },
    { tool: 'knowledge_status', args: () => ({}), check: (o) => assert.ok(o.entities) },
  ];
}

// badCalls are calls with arguments a model gets wrong, and what the error must say: the
// argument at fault, and what to write instead.
export const badCalls = [
  { tool: 'query', args: { sqll: 'SELECT 1' }, says: ['"sqll"', 'did you mean "sql"', 'takes'] },
  {
    tool: 'vector_search',
    args: { table: 'entities', embedding_column: 'embedding', query_vector: [0.1, 0.2] },
    says: ['"query_vector"', 'did you mean "query_embedding"', 'takes'],
  },
  {
    tool: 'agent_record_execution',
    args: { agent_id: 'a', tokens: 5, tokens_out: 1, duration_ms: 1, outcome: 'success' },
    says: ['"tokens"', 'did you mean "tokens_in"', 'takes'],
  },
  { tool: 'workflow_get', args: {}, says: ['"workflow_id"', 'missing'] },
  { tool: 'list_tables', args: { exact: 'yes' }, says: ['"exact"', 'boolean'] },
  { tool: 'transaction', args: { statements: [{ sql: 'SELECT 1', param: [] }] }, says: ['"param"', 'did you mean "params"'] },
];
