// The graph of the end-to-end test: plan a deployment, ask a human with interrupt(), deploy or
// not. Every process of the test builds it anew on its own CairnSaver.
import { Annotation, END, START, StateGraph, interrupt } from "@langchain/langgraph";
import { CairnSaver } from "../../src/index.js";
import { cairnURL, cairnToken } from "../env.js";

const State = Annotation.Root({
  messages: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
  decision: Annotation<string | undefined>(),
});

export function threadConfig() {
  const thread_id = process.env.THREAD_ID;
  if (!thread_id) throw new Error("THREAD_ID is not set: run through go test ./clients/langgraph/");
  return { configurable: { thread_id } };
}

export function build() {
  const saver = new CairnSaver({ url: cairnURL(), token: cairnToken() });
  const graph = new StateGraph(State)
    .addNode("plan", (s) => ({ messages: [`plan: ${s.messages[0]}`] }))
    .addNode("approve", () => {
      const answer = interrupt({ question: "Deploy nginx to production?" }) as string;
      return { decision: answer, messages: [`human: ${answer}`] };
    })
    .addNode("deploy", (s) => ({ messages: [s.decision === "approve" ? "deployed" : "not deployed"] }))
    .addEdge(START, "plan")
    .addEdge("plan", "approve")
    .addEdge("approve", "deploy")
    .addEdge("deploy", END)
    .compile({ checkpointer: saver });
  return { saver, graph };
}
