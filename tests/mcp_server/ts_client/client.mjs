// An independent MCP client: the official TypeScript SDK calling prehydrate's request_context over stdio.
//
// Usage: node client.mjs <server command> [server args...]
// Prints one JSON object (what the server answered) on stdout; tests/mcp_server/test_ts_client.py
// runs it against a real `prehydrate serve` and checks the answers. Exits non-zero on a protocol
// failure (a tool error is data, not a failure: the Python side checks its message).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { writeFileSync } from "node:fs";

const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error("usage: node client.mjs <server command> [args...]");
  process.exit(2);
}

const transport = new StdioClientTransport({ command, args, env: process.env, stderr: "inherit" });
let protocolVersion = null;
const setProtocolVersion = transport.setProtocolVersion?.bind(transport);
transport.setProtocolVersion = (v) => {
  protocolVersion = v; // the version the handshake negotiated (the SDK keeps it private)
  setProtocolVersion?.(v);
};
const client = new Client({ name: "prehydrate-ts-check", version: "0.0.0" });

const call = async (args, meta) => {
  const params = { name: "request_context", arguments: args };
  if (meta) params._meta = meta;
  const r = await client.callTool(params);
  return {
    isError: Boolean(r.isError),
    structured: r.structuredContent ?? null,
    text: r.content?.[0]?.type === "text" ? r.content[0].text : null,
  };
};

// Notify mode (env PREHYDRATE_TS_EDIT_FILE + PREHYDRATE_TS_EDIT_URI): subscribe to the URI, rewrite
// the file, and report how long `notifications/resources/updated` took to arrive.
const editFile = process.env.PREHYDRATE_TS_EDIT_FILE;
const editUri = process.env.PREHYDRATE_TS_EDIT_URI;

async function notifyMode() {
  await client.connect(transport);
  const updated = [];
  let wake = () => {};
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
    updated.push({ uri: n.params.uri, at: performance.now() });
    wake();
  });
  const capabilities = client.getServerCapabilities();
  await client.subscribeResource({ uri: editUri });
  writeFileSync(editFile, "# Guide\n\nThe version the TypeScript client wrote.\n");
  const t0 = performance.now();
  const deadline = t0 + 10000;
  while (!updated.some((u) => u.uri === editUri) && performance.now() < deadline) {
    await new Promise((resolve) => {
      wake = resolve;
      setTimeout(resolve, 100);
    });
  }
  const hit = updated.find((u) => u.uri === editUri);
  const after = await client.readResource({ uri: editUri });
  const out = {
    protocolVersion,
    resourcesCapability: capabilities?.resources ?? null,
    updated: updated.map((u) => u.uri),
    latencyMs: hit ? hit.at - t0 : null,
    contentAfter: after.contents[0].text,
  };
  process.stdout.write(JSON.stringify(out) + "\n");
  await client.close();
}

try {
  if (editFile && editUri) {
    await notifyMode();
    process.exit(0);
  }
  await client.connect(transport);
  const { tools } = await client.listTools();
  const tool = tools.find((t) => t.name === "request_context");
  const catalog = JSON.parse((await client.readResource({ uri: "prehydrate://sections" })).contents[0].text);
  const first = catalog[0].id;
  const second = catalog[1].id;
  const out = {
    protocolVersion,
    server: client.getServerVersion(),
    tool: tool ? { annotations: tool.annotations, outputSchema: tool.outputSchema, inputSchema: tool.inputSchema } : null,
    catalogIds: catalog.map((s) => s.id),
    calls: {
      first: await call({ section: first }),
      second: await call({ section: second }),
      secondAgain: await call({ section: second }),
      query: await call({ query: "refund policy" }),
      unknown: await call({ section: "billing/refund" }),
      both: await call({ section: first, query: "x" }),
      neither: await call({}),
      traversal: await call({ section: "../../etc/passwd" }),
      huge: await call({ query: "q".repeat(1 << 20) }),
      afterErrors: await call({ section: first }),
      metaSession: await call({ section: second }, { "prehydrate/session": "ts-explicit" }),
    },
  };
  process.stdout.write(JSON.stringify(out) + "\n");
  await client.close();
} catch (err) {
  console.error(err?.stack ?? String(err));
  try {
    await client.close();
  } catch {}
  process.exit(1);
}
