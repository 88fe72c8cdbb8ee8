// Process 1: the graph runs until the approve node's interrupt().
import { build, threadConfig } from "./graph.js";

test("the graph stops at interrupt() with the question", async () => {
  const { saver, graph } = build();
  const out = await graph.invoke({ messages: ["deploy nginx"] }, threadConfig());
  expect(out.__interrupt__?.[0]?.value).toEqual({ question: "Deploy nginx to production?" });
  const state = await graph.getState(threadConfig());
  expect(state.next).toEqual(["approve"]);
  expect(state.values.messages).toEqual(["deploy nginx", "plan: deploy nginx"]);
  expect(state.tasks[0].interrupts[0].value).toEqual({ question: "Deploy nginx to production?" });
  await saver.close();
});
