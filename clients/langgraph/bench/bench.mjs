// CairnSaver beside the official PostgresSaver, in one run on one PostgreSQL (bench/langgraph.go
// starts cairn and runs this with the compiled saver in ../dist). Prints one JSON object.
//   CAIRN_URL  cairn's /mcp endpoint        PG_URL     a database for PostgresSaver
//   CAIRN_DB   cairn's database (sizes)      N          calls per latency measurement
//   STEPS      steps of the storage thread   CONCURRENCY threads at once in the concurrent run
import pg from "pg";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";
import { uuid6 } from "@langchain/langgraph-checkpoint";
import { AIMessage, HumanMessage } from "@langchain/core/messages";
import { CairnSaver } from "../dist/index.js";

const N = Number(process.env.N ?? 300);
const STEPS = Number(process.env.STEPS ?? 200);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 8);

// Prose-like text: words of a fixed vocabulary, drawn by a seeded generator (compressible as
// prose is, not as padding is).
const VOCAB = (`the of and to in is was that for on with as by at from his her they this which be or an not are had have
but one all were we when there can been has more if will their who so would out up about into them time only some
could new these two may then do first any my now such like other our over also back after use how most made
agent tool call result plan step model answer question search data file server deploy build test error retry log
user request response message context memory state graph node edge thread checkpoint value version write task
production staging service cluster database index query table row column schema migration backup restore latency`).split(/\s+/);
function rng(seed) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}
function prose(r, bytes) {
  const out = [];
  let n = 0;
  while (n < bytes) {
    const w = VOCAB[Math.floor(r() * VOCAB.length)];
    out.push(w);
    n += w.length + 1;
  }
  return out.join(" ");
}
function message(r, i) {
  const content = prose(r, 1000);
  return i % 2 === 0 ? new HumanMessage({ id: `msg-${i}`, content }) : new AIMessage({ id: `msg-${i}`, content });
}

// A thread driven the way LangGraph drives a checkpointer: each step, the task's writes to the
// current checkpoint, then the next checkpoint with the changed channels' new versions.
class Thread {
  constructor(saver, threadId, values, seen = {}) {
    this.saver = saver;
    this.threadId = threadId;
    this.values = values;
    this.versions = {};
    for (const k of Object.keys(values)) this.versions[k] = saver.getNextVersion(undefined);
    this.seen = seen;
    this.config = { configurable: { thread_id: threadId, checkpoint_ns: "" } };
    this.step = -1;
  }
  checkpoint() {
    return { v: 4, id: uuid6(-1), ts: new Date().toISOString(), channel_values: { ...this.values }, channel_versions: { ...this.versions },
      versions_seen: { __input__: {}, __start__: { __start__: this.versions[Object.keys(this.versions)[0]] }, agent: { "branch:to:agent": this.step } } };
  }
  async put(changed) {
    const newVersions = {};
    for (const k of changed) {
      const max = Object.values(this.versions).reduce((a, b) => (String(a) > String(b) ? a : b));
      this.versions[k] = this.saver.getNextVersion(max);
      newVersions[k] = this.versions[k];
    }
    this.step++;
    this.config = await this.saver.put(this.config, this.checkpoint(), { source: "loop", step: this.step, parents: {} },
      this.step === 0 ? { ...this.versions } : newVersions);
  }
  async write(task, writes) {
    await this.saver.putWrites(this.config, writes, task);
  }
}

function percentiles(ds) {
  ds.sort((a, b) => a - b);
  return { p50: ds[Math.floor(ds.length / 2)], p95: ds[Math.floor(ds.length * 0.95)], n: ds.length };
}

async function timed(f) {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

// latency: each saver runs its own threads of a conversation (messages up to 40, then a new
// thread) put by put and read back with getTuple, `workers` threads at once; the savers take turns
// in rounds so a slow spell of the machine falls on both.
async function latency(savers, workers, calls) {
  const res = {};
  for (const name of Object.keys(savers)) res[name] = { put: [], get: [] };
  const rounds = 4;
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? Object.keys(savers) : Object.keys(savers).reverse();
    for (const name of order) {
      const saver = savers[name];
      await Promise.all(Array.from({ length: workers }, async (_, w) => {
        const r = rng(1000 * round + w + 1);
        let thread;
        for (let i = 0; i < calls / rounds / workers; i++) {
          if (i % 40 === 0) {
            thread = new Thread(saver, `lat-${name}-${workers}-${round}-${w}-${i}`, { messages: [], step: 0 });
            await thread.put([]);
          }
          const msg = message(r, i);
          await thread.write(`task-${i}`, [["messages", [msg]]]);
          thread.values = { messages: [...thread.values.messages, msg], step: i + 1 };
          const warm = round === 0 && i < 5;
          const tp = await timed(() => thread.put(["messages", "step"]));
          const tg = await timed(() => saver.getTuple({ configurable: { thread_id: thread.threadId, checkpoint_ns: "" } }));
          if (!warm) {
            res[name].put.push(tp);
            res[name].get.push(tg);
          }
        }
      }));
    }
  }
  for (const name of Object.keys(res)) res[name] = { put: percentiles(res[name].put), get: percentiles(res[name].get) };
  return res;
}

// tableSizes: every table's size with its indexes and TOAST, by name.
async function tableSizes(url) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const { rows } = await c.query(`SELECT c.relname AS t, pg_total_relation_size(c.oid)::bigint AS b FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')`);
  await c.end();
  return Object.fromEntries(rows.map((r) => [r.t, Number(r.b)]));
}

// storage: one thread of STEPS steps; the database's tables before and after, no VACUUM.
async function storage(saver, url, kind) {
  const r = rng(kind === "messages" ? 7 : 8);
  let thread;
  let step;
  if (kind === "messages") {
    thread = new Thread(saver, `storage-${kind}`, { messages: [], step: 0 });
    step = async (i) => {
      const msg = message(r, i);
      await thread.write(`task-${i}`, [["messages", [msg]]]);
      thread.values = { ...thread.values, messages: [...thread.values.messages, msg], step: i + 1 };
      await thread.put(["messages", "step"]);
    };
  } else {
    const values = {};
    for (let k = 0; k < 50; k++) values[`key${k}`] = prose(r, 1000);
    thread = new Thread(saver, `storage-${kind}`, values);
    step = async (i) => {
      const key = `key${i % 50}`;
      const v = prose(r, 1000);
      await thread.write(`task-${i}`, [[key, v]]);
      thread.values = { ...thread.values, [key]: v };
      await thread.put([key]);
    };
  }
  await thread.put([]);
  const before = await tableSizes(url);
  for (let i = 0; i < STEPS; i++) await step(i);
  const after = await tableSizes(url);
  const tables = {};
  let bytes = 0;
  for (const [t, b] of Object.entries(after)) {
    const d = b - (before[t] ?? 0);
    bytes += d;
    if (d !== 0) tables[t] = d;
  }
  return { bytes, perStep: bytes / STEPS, tables };
}

const pool = new pg.Pool({ connectionString: process.env.PG_URL, max: 10 });
const postgres = new PostgresSaver(pool);
await postgres.setup();
const cairn = new CairnSaver({ url: process.env.CAIRN_URL });
const savers = { cairn, postgres };

const out = { n: N, steps: STEPS, concurrency: CONCURRENCY };
if (N > 0) {
  out.one = await latency(savers, 1, N);
  out.many = await latency(savers, CONCURRENCY, N * 2);
}
out.storage = {};
for (const kind of ["messages", "keys50"]) {
  out.storage[kind] = {
    cairn: await storage(cairn, process.env.CAIRN_DB, kind),
    postgres: await storage(postgres, process.env.PG_URL, kind),
  };
}
await cairn.close();
await pool.end();
console.log(JSON.stringify(out));
