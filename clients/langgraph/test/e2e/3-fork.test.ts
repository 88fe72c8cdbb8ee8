// Process 3: time travel. From the checkpoint where the plan was made, the thread forks with a
// changed plan, is asked again and rejected; the first branch stays as it was.
import { Command } from "@langchain/langgraph";
import { build, threadConfig } from "./graph.js";

test("a fork from an earlier checkpoint takes another path and keeps the first", async () => {
  const { saver, graph } = build();
  const history = [];
  for await (const s of graph.getStateHistory(threadConfig())) history.push(s);
  const planned = history.find((s) => s.next.length === 1 && s.next[0] === "approve");
  expect(planned).toBeDefined();
  const finished = history[0];
  expect(finished.values.messages.at(-1)).toBe("deployed");

  const forked = await graph.updateState(planned!.config, { messages: ["plan changed: staging first"] });
  const asked = await graph.invoke(null, forked);
  expect(asked.__interrupt__?.[0]?.value).toEqual({ question: "Deploy nginx to production?" });
  const out = await graph.invoke(new Command({ resume: "reject" }), threadConfig());
  expect(out.messages).toEqual(["deploy nginx", "plan: deploy nginx", "plan changed: staging first", "human: reject", "not deployed"]);

  // The first branch is still there, by its checkpoint id.
  const first = await graph.getState(finished.config);
  expect(first.values.messages.at(-1)).toBe("deployed");
  const latest = await graph.getState(threadConfig());
  expect(latest.values.messages.at(-1)).toBe("not deployed");
  expect(latest.parentConfig).toBeDefined();
  await saver.close();
});
