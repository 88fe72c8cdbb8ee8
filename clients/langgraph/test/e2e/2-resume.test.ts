// Process 2: another process resumes the interrupted thread with the human's answer.
import { Command } from "@langchain/langgraph";
import { build, threadConfig } from "./graph.js";

test("a Command resumes the thread from cairn and it runs to the end", async () => {
  const { saver, graph } = build();
  const before = await graph.getState(threadConfig());
  expect(before.next).toEqual(["approve"]);
  const out = await graph.invoke(new Command({ resume: "approve" }), threadConfig());
  expect(out.messages).toEqual(["deploy nginx", "plan: deploy nginx", "human: approve", "deployed"]);
  expect(out.decision).toBe("approve");
  const after = await graph.getState(threadConfig());
  expect(after.next).toEqual([]);
  await saver.close();
});
