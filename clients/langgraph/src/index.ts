// A LangGraph checkpointer that keeps threads in cairn, through cairn's MCP tools only
// (checkpoint_save, checkpoint_put_writes, checkpoint_load, checkpoint_list, workflow_delete)
// over Streamable HTTP.
//
// A LangGraph thread is the cairn workflow `prefix + thread_id`; its checkpoints keep
// LangGraph's ids, parents, metadata and channel versions, and only the channels in `newVersions`
// are sent with each put (cairn keeps every other channel's value under its version). Values go
// through the saver's serde, as the official savers do: a "json" value travels as the JSON it
// is, so cairn stores a message list message by message; anything else (bytes, or JSON that
// PostgreSQL's jsonb cannot hold) as {"$serde": [type, base64]}.

import { randomBytes } from "node:crypto";
import type { RunnableConfig } from "@langchain/core/runnables";
import {
  BaseCheckpointSaver,
  TASKS,
  WRITES_IDX_MAP,
  maxChannelVersion,
  type ChannelVersions,
  type Checkpoint,
  type CheckpointListOptions,
  type CheckpointMetadata,
  type CheckpointPendingWrite,
  type CheckpointTuple,
  type PendingWrite,
  type SerializerProtocol,
} from "@langchain/langgraph-checkpoint";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

/** Options of a {@link CairnSaver}. */
export interface CairnSaverOptions {
  /** cairn's Streamable HTTP endpoint, e.g. `http://127.0.0.1:8080/mcp`. */
  url: string | URL;
  /** Bearer token for a cairn that requires one (`cairn serve --auth-token …`). */
  token?: string;
  /**
   * Prepended to every thread id to make the cairn workflow id; `list()` without a thread lists
   * only workflows with this prefix, so savers with different prefixes never see each other's
   * threads. Default "" (thread ids are workflow ids).
   */
  prefix?: string;
  /** The name cairn gives a workflow a thread's first checkpoint starts. Default "langgraph". */
  workflowName?: string;
  /** Extra options for the HTTP requests (headers, a custom fetch's init). */
  requestInit?: RequestInit;
  /** Serializer for values; default LangGraph's JsonPlusSerializer. */
  serde?: SerializerProtocol;
}

/** A tool error cairn returned: a problem with the call, not with the connection. */
export class CairnToolError extends Error {
  constructor(
    readonly tool: string,
    message: string,
  ) {
    super(`cairn ${tool}: ${message}`);
    this.name = "CairnToolError";
  }
}

interface CairnWrite {
  task_id: string;
  channel: string;
  value: unknown;
  idx: number;
  task_path?: string;
}

interface CairnCheckpoint {
  checkpoint_id: string;
  workflow_id: string;
  namespace: string;
  parent_id?: string;
  state?: unknown;
  channel_versions?: ChannelVersions;
  extra?: Record<string, unknown>;
  metadata: Record<string, unknown>;
  pending_writes: CairnWrite[];
}

const SERDE_KEY = "$serde";
const PAGE = 1000;
// JSON that jsonb refuses: a NUL character, or a lone surrogate (JSON.stringify escapes only those).
const NOT_FOR_JSONB = /\\u0000|\\ud[89a-f]/i;

/**
 * CairnSaver is a LangGraph `BaseCheckpointSaver` backed by a running `cairn serve`: one MCP
 * client per saver, connected on first use and reconnected after a failed call.
 */
export class CairnSaver extends BaseCheckpointSaver<string> {
  readonly prefix: string;
  private readonly url: URL;
  private readonly workflowName: string;
  private readonly requestInit: RequestInit;
  private client?: Promise<Client>;

  constructor(options: CairnSaverOptions) {
    super(options.serde);
    this.url = new URL(options.url);
    this.prefix = options.prefix ?? "";
    this.workflowName = options.workflowName ?? "langgraph";
    const headers = new Headers(options.requestInit?.headers);
    if (options.token) headers.set("Authorization", `Bearer ${options.token}`);
    this.requestInit = { ...options.requestInit, headers };
  }

  /** Closes the MCP client; the saver connects again if used after. */
  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (c) await (await c).close().catch(() => {});
  }

  private connect(): Promise<Client> {
    this.client ??= (async () => {
      const client = new Client({ name: "cairn-langgraph-checkpoint", version: "0.1.0" });
      await client.connect(new StreamableHTTPClientTransport(this.url, { requestInit: this.requestInit }));
      return client;
    })().catch((err) => {
      this.client = undefined;
      throw err;
    });
    return this.client;
  }

  /**
   * call calls a cairn tool and returns its structured result. A failure to reach cairn drops
   * the client and tries once more on a new one: every call the saver makes may be repeated
   * (a put of the same checkpoint is a no-op, a write kept once).
   */
  private async call<T>(tool: string, args: Record<string, unknown>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let res;
      try {
        const client = await this.connect();
        res = await client.callTool({ name: tool, arguments: args });
      } catch (err) {
        await this.close();
        if (attempt === 0) continue;
        throw err;
      }
      const text = (res.content as Array<{ type: string; text?: string }> | undefined)?.find((c) => c.type === "text")?.text ?? "";
      if (res.isError) throw new CairnToolError(tool, text);
      return (res.structuredContent ?? JSON.parse(text)) as T;
    }
  }

  private workflowId(threadId: unknown): string {
    if (threadId === undefined || threadId === null || threadId === "") {
      throw new Error(`Missing "thread_id" field in passed "config.configurable".`);
    }
    return this.prefix + String(threadId);
  }

  /** encode turns a value into what cairn stores, through the saver's serde. */
  private async encode(value: unknown): Promise<unknown> {
    const [type, bytes] = await this.serde.dumpsTyped(value);
    if (type === "json") {
      const text = new TextDecoder().decode(bytes);
      if (!NOT_FOR_JSONB.test(text)) {
        const json = JSON.parse(text);
        if (!isWrapped(json)) return json;
      }
    }
    return { [SERDE_KEY]: [type, Buffer.from(bytes).toString("base64")] };
  }

  private async decode(value: unknown): Promise<unknown> {
    if (isWrapped(value)) {
      const [type, b64] = value[SERDE_KEY];
      return this.serde.loadsTyped(type, new Uint8Array(Buffer.from(b64, "base64")));
    }
    return this.serde.loadsTyped("json", JSON.stringify(value));
  }

  private async encodeMetadata(metadata: CheckpointMetadata | undefined): Promise<Record<string, unknown>> {
    const [, bytes] = await this.serde.dumpsTyped(metadata ?? {});
    // jsonb holds no NUL; the official PostgreSQL saver drops them too.
    return JSON.parse(new TextDecoder().decode(bytes).replace(/\\u0000/g, ""));
  }

  private async toTuple(threadId: string, cp: CairnCheckpoint): Promise<CheckpointTuple> {
    const state = (cp.state ?? {}) as Record<string, unknown>;
    const channelValues: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(state)) channelValues[k] = await this.decode(v);
    const checkpoint = {
      v: 4,
      ts: "",
      versions_seen: {},
      ...(cp.extra ?? {}),
      id: cp.checkpoint_id,
      channel_values: channelValues,
      channel_versions: { ...(cp.channel_versions ?? {}) },
    } as Checkpoint;
    const ns = cp.namespace ?? "";
    if (checkpoint.v < 4 && cp.parent_id) await this.migratePendingSends(cp.workflow_id, ns, cp.parent_id, checkpoint);
    const pendingWrites: CheckpointPendingWrite[] = [];
    for (const w of cp.pending_writes ?? []) pendingWrites.push([w.task_id, w.channel, await this.decode(w.value)]);
    return {
      config: { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: cp.checkpoint_id } },
      checkpoint,
      metadata: (await this.serde.loadsTyped("json", JSON.stringify(cp.metadata ?? {}))) as CheckpointMetadata,
      parentConfig: cp.parent_id
        ? { configurable: { thread_id: threadId, checkpoint_ns: ns, checkpoint_id: cp.parent_id } }
        : undefined,
      pendingWrites,
    };
  }

  /**
   * Checkpoints before format 4 kept the Sends of the next step as the parent's writes to the
   * TASKS channel; LangGraph now expects them among the checkpoint's values.
   */
  private async migratePendingSends(workflowId: string, ns: string, parentId: string, checkpoint: Checkpoint): Promise<void> {
    let parent: CairnCheckpoint;
    try {
      parent = await this.call<CairnCheckpoint>("checkpoint_load", { workflow_id: workflowId, checkpoint_id: parentId, namespace: ns });
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    const sends = parent.pending_writes.filter((w) => w.channel === TASKS);
    if (sends.length === 0) return;
    const values = [];
    for (const w of sends) values.push(await this.decode(w.value));
    checkpoint.channel_values[TASKS] = values;
    const versions = Object.values(checkpoint.channel_versions);
    checkpoint.channel_versions[TASKS] = versions.length > 0 ? maxChannelVersion(...versions) : this.getNextVersion(undefined);
  }

  /**
   * getNextVersion makes versions unique within a thread, as LangGraph's Python savers do: the
   * step count, zero-padded so that versions order as strings, and a random part. A fork from
   * an earlier checkpoint then never reuses a version another branch gave a different value
   * (cairn keeps the first value of a version, as the official PostgreSQL saver does).
   */
  getNextVersion(current: string | undefined): string {
    const n = current === undefined ? 0 : typeof current === "number" ? current : Number.parseInt(String(current).split(".")[0], 10) || 0;
    return `${String(n + 1).padStart(10, "0")}.${randomBytes(4).toString("hex")}`;
  }

  async getTuple(config: RunnableConfig): Promise<CheckpointTuple | undefined> {
    const { thread_id, checkpoint_ns = "", checkpoint_id } = config.configurable ?? {};
    if (thread_id === undefined || thread_id === null || thread_id === "") return undefined;
    const args: Record<string, unknown> = { workflow_id: this.workflowId(thread_id), namespace: checkpoint_ns };
    if (checkpoint_id) args.checkpoint_id = checkpoint_id;
    let cp: CairnCheckpoint;
    try {
      cp = await this.call<CairnCheckpoint>("checkpoint_load", args);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    if (checkpoint_id && (cp.namespace ?? "") !== checkpoint_ns) return undefined;
    return this.toTuple(String(thread_id), cp);
  }

  async *list(config: RunnableConfig, options?: CheckpointListOptions): AsyncGenerator<CheckpointTuple> {
    const { filter, before, limit } = options ?? {};
    const { thread_id, checkpoint_ns, checkpoint_id } = config?.configurable ?? {};
    const args: Record<string, unknown> = { include_state: true };
    if (thread_id !== undefined && thread_id !== null && thread_id !== "") args.workflow_id = this.workflowId(thread_id);
    else if (this.prefix !== "") args.workflow_prefix = this.prefix;
    if (checkpoint_ns !== undefined && checkpoint_ns !== null) args.namespace = checkpoint_ns;
    if (filter && Object.keys(filter).length > 0) args.metadata = filter;
    let cursor: string | undefined = before?.configurable?.checkpoint_id;
    let left = limit ?? Infinity;
    while (left > 0) {
      const page = Math.min(left, PAGE);
      let res: { checkpoints: CairnCheckpoint[] };
      try {
        res = await this.call("checkpoint_list", { ...args, limit: page, ...(cursor ? { before: cursor } : {}) });
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
      for (const cp of res.checkpoints) {
        cursor = cp.checkpoint_id;
        if (checkpoint_id && cp.checkpoint_id !== checkpoint_id) continue;
        left--;
        yield this.toTuple(cp.workflow_id.slice(this.prefix.length), cp);
      }
      if (res.checkpoints.length < page) return;
    }
  }

  async put(config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, newVersions: ChannelVersions): Promise<RunnableConfig> {
    if (config.configurable === undefined) throw new Error(`Missing "configurable" field in "config" param`);
    const { thread_id, checkpoint_ns = "" } = config.configurable;
    await this.save(config, checkpoint, metadata, newVersions);
    return { configurable: { thread_id, checkpoint_ns, checkpoint_id: checkpoint.id } };
  }

  private async save(config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, newVersions: ChannelVersions): Promise<void> {
    const { thread_id, checkpoint_ns = "", checkpoint_id } = config.configurable ?? {};
    const { channel_values: values, channel_versions: versions, id, ...extra } = checkpoint;
    const state: Record<string, unknown> = {};
    for (const channel of Object.keys(newVersions)) {
      if (values !== undefined && channel in values) state[channel] = await this.encode(values[channel]);
    }
    await this.call("checkpoint_save", {
      workflow_id: this.workflowId(thread_id),
      workflow_name: this.workflowName,
      checkpoint_id: id,
      namespace: checkpoint_ns,
      ...(checkpoint_id ? { parent_id: checkpoint_id } : {}),
      state,
      channel_versions: versions ?? {},
      extra: JSON.parse(JSON.stringify(extra)),
      metadata: await this.encodeMetadata(metadata),
    });
  }

  async putWrites(config: RunnableConfig, writes: PendingWrite[], taskId: string, taskPath = ""): Promise<void> {
    const { thread_id, checkpoint_ns = "", checkpoint_id } = config.configurable ?? {};
    const workflowId = this.workflowId(thread_id);
    if (checkpoint_id === undefined || checkpoint_id === null || checkpoint_id === "") {
      throw new Error(`Missing "checkpoint_id" field in passed "config.configurable".`);
    }
    if (writes.length === 0) return;
    const encoded = [];
    for (const [i, [channel, value]] of writes.entries()) {
      encoded.push({ channel, value: await this.encode(value), idx: WRITES_IDX_MAP[channel] ?? i });
    }
    await this.call("checkpoint_put_writes", {
      workflow_id: workflowId,
      checkpoint_id,
      namespace: checkpoint_ns,
      task_id: taskId,
      task_path: taskPath,
      writes: encoded,
    });
  }

  async deleteThread(threadId: string): Promise<void> {
    try {
      await this.call("workflow_delete", { workflow_id: this.workflowId(threadId) });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

function isWrapped(v: unknown): v is { [SERDE_KEY]: [string, string] } {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 1 && SERDE_KEY in v;
}

function isNotFound(err: unknown): boolean {
  return err instanceof CairnToolError && /does not exist/.test(err.message);
}
