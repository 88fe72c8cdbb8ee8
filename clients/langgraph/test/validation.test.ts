// LangGraph's own checkpointer validation suite, run against CairnSaver on the cairn that
// CAIRN_URL points at (langgraph_test.go starts one). Each checkpointer gets a prefix of its own,
// so the suite's literal thread ids ("1", "2", "thread-1") never meet across its parts.
import { randomUUID } from "node:crypto";
import { validate } from "@langchain/langgraph-checkpoint-validation";
import { CairnSaver } from "../src/index.js";
import { cairnURL, cairnToken } from "./env.js";

validate<CairnSaver>({
  checkpointerName: "@cairn-mcp/langgraph-checkpoint",
  createCheckpointer: () => new CairnSaver({ url: cairnURL(), token: cairnToken(), prefix: `validate-${randomUUID()}:` }),
  destroyCheckpointer: (saver) => saver.close(),
});
