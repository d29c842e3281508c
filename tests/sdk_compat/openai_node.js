// The official `openai` npm package against the gateway's /v1 (run by test_openai_node.py under Node).
// argv: base URL, model alias. Prints one JSON object with what each call gave, for Python to check.
const OpenAI = require("openai");

async function main() {
  const [baseURL, model] = process.argv.slice(2);
  const client = new OpenAI({ baseURL, apiKey: "not-needed", maxRetries: 0, timeout: 20000 });
  const messages = [{ role: "user", content: "Write a headline for the Aurora kettle." }];
  const tools = [{ type: "function", function: { name: "get_stock", description: "Units in stock.",
    parameters: { type: "object", properties: { sku: { type: "string" } }, required: ["sku"] } } }];
  const out = {};

  const completion = await client.chat.completions.create({ model, messages });
  out.create = { model: completion.model, content: completion.choices[0].message.content,
                 finish: completion.choices[0].finish_reason };

  const stream = await client.chat.completions.create({ model, messages, stream: true,
                                                        stream_options: { include_usage: true } });
  let text = "";
  const models = new Set();
  let usage = null;
  for await (const chunk of stream) {
    models.add(chunk.model);
    if (chunk.choices.length) text += chunk.choices[0].delta.content || "";
    if (chunk.usage) usage = chunk.usage;
  }
  out.stream = { text, models: [...models], usage };

  const first = await client.chat.completions.create({ model, messages, tools, tool_choice: "required" });
  const call = first.choices[0].message.tool_calls[0];
  const second = await client.chat.completions.create({ model, tools, messages: [...messages,
    first.choices[0].message, { role: "tool", tool_call_id: call.id, content: "12 units" }] });
  out.tools = { name: call.function.name, args: JSON.parse(call.function.arguments),
                finish: first.choices[0].finish_reason, after: second.choices[0].message.content };

  const runner = client.chat.completions.stream({ model, messages, tools,
    tool_choice: { type: "function", function: { name: "get_stock" } } });
  const final = await runner.finalChatCompletion();
  out.streamedTool = final.choices[0].message.tool_calls[0].function.name;

  try {
    await client.chat.completions.create({ model: "no-such-model", messages });
    out.error = null;
  } catch (err) {
    out.error = { status: err.status, code: err.code, param: err.param, type: err.type,
                  cls: err.constructor.name, requestId: err.request_id || err.requestID || null };
  }
  out.retrieved = (await client.models.retrieve(model)).id;
  process.stdout.write(JSON.stringify(out));
}

main().catch((err) => { console.error(err); process.exit(1); });
