// Runs calls of Novu's official TypeScript SDK (@novu/api) against a server and prints one JSON line per call.
// Usage: node novu_calls.mjs < {"serverURL": "...", "secretKey": "...", "calls": [{"method": "subscribers.create",
// "args": [...]}, ...]}. Each line is {"ok": true, "result": ...} or {"ok": false, "error": {name, statusCode,
// message, body}}; a call's failure doesn't stop the next one.
import { Novu } from "@novu/api";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { serverURL, secretKey, calls } = JSON.parse(Buffer.concat(chunks).toString());
// No retries: the SDK would otherwise retry a 409, 429 or 5xx for up to an hour.
const novu = new Novu({ serverURL, secretKey, retryConfig: { strategy: "none" }, timeoutMs: 30000 });

for (const { method, args } of calls) {
  const target = method.split(".").slice(0, -1).reduce((object, name) => object[name], novu);
  const name = method.split(".").at(-1);
  try {
    const response = await target[name](...args);
    console.log(JSON.stringify({ ok: true, result: response?.result ?? null }));
  } catch (error) {
    console.log(
      JSON.stringify({
        ok: false,
        error: {
          name: error?.name,
          statusCode: error?.statusCode,
          message: error?.message,
          body: error?.body,
        },
      }),
    );
  }
}
