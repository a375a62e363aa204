// A scripted MCP client built with the TypeScript SDK, for airlock's tests.
//
//   MCP_URL=http://127.0.0.1:8080/mcp/github MCP_TOKEN=<bearer> node client.mjs < steps.json
//
// stdin holds a JSON array of steps, run in order after connecting (connect
// runs initialize). Each step is an object with "op" and its arguments:
//   {"op":"listTools"}             {"op":"callTool","name":"echo","arguments":{"text":"hi"},"progress":true}
//   {"op":"listResources"}         {"op":"readResource","uri":"docs://readme"}
//   {"op":"listPrompts"}           {"op":"getPrompt","name":"p","arguments":{"a":"b"}}
//   {"op":"ping"}                  {"op":"setLoggingLevel","level":"debug"}
//   {"op":"request","method":"tools/list","params":{}}   (any method, result passed through)
//   {"op":"terminateSession"}      (DELETE the session)
// Any step may have "timeoutMs" (default 30000).
//
// stdout gets one JSON line per step, the connect step first (step 0):
//   {"step":N,"op":..,"ok":true,"result":..}
//   {"step":N,"op":..,"ok":false,"error":{"name","message","code","data",
//     "http":{"status","method","wwwAuthenticate","contentType","body"}}}
// plus, when there were any during the step, "progress" (progress
// notifications), "notifications" (other server notifications) and
// "transportErrors". "http" is the last failed POST/DELETE answer (status,
// WWW-Authenticate and body, up to 64 KiB). A failed connect ends the run.
// MCP_HEADERS may hold a JSON object of extra request headers. The token is
// sent as "Authorization: Bearer <MCP_TOKEN>" and never printed.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ResultSchema } from '@modelcontextprotocol/sdk/types.js';

const maxBody = 64 << 10;

function readStdin() {
  return new Promise((resolve, reject) => {
    const chunks = [];
    process.stdin.on('data', (c) => chunks.push(c));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

function emit(line) {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

// Per-step observations, reset before each step.
let lastHTTP = null;
let notifications = [];
let transportErrors = [];

// fetch that remembers the last failed POST/DELETE answer, for error reports.
async function recordingFetch(url, init) {
  const res = await fetch(url, init);
  const method = (init?.method ?? 'GET').toUpperCase();
  if (!res.ok && method !== 'GET') {
    let body = '';
    try {
      body = await res.clone().text();
    } catch {
      body = '';
    }
    lastHTTP = {
      status: res.status,
      method,
      wwwAuthenticate: res.headers.get('www-authenticate') ?? undefined,
      contentType: res.headers.get('content-type') ?? undefined,
      body: body.length > maxBody ? body.slice(0, maxBody) : body,
    };
  }
  return res;
}

function describeError(err) {
  const out = {
    // SDK error classes (StreamableHTTPError ...) do not all set name.
    name: err?.name && err.name !== 'Error' ? err.name : (err?.constructor?.name ?? 'Error'),
    message: String(err?.message ?? err),
  };
  if (typeof err?.code === 'number') out.code = err.code;
  if (err?.data !== undefined) out.data = err.data;
  if (lastHTTP) out.http = lastHTTP;
  return out;
}

function finish(step, op, fn) {
  lastHTTP = null;
  notifications = [];
  transportErrors = [];
  const progress = [];
  return fn(progress).then(
    (result) => ({ step, op, ok: true, result }),
    (err) => ({ step, op, ok: false, error: describeError(err) }),
  ).then((line) => {
    if (progress.length) line.progress = progress;
    if (notifications.length) line.notifications = notifications;
    if (transportErrors.length) line.transportErrors = transportErrors;
    emit(line);
    return line.ok;
  });
}

async function main() {
  const url = process.env.MCP_URL;
  if (!url) throw new Error('MCP_URL is not set');
  const steps = JSON.parse((await readStdin()) || '[]');
  if (!Array.isArray(steps)) throw new Error('stdin must hold a JSON array of steps');

  const headers = { ...(process.env.MCP_HEADERS ? JSON.parse(process.env.MCP_HEADERS) : {}) };
  if (process.env.MCP_TOKEN) headers.Authorization = `Bearer ${process.env.MCP_TOKEN}`;

  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers },
    fetch: recordingFetch,
    reconnectionOptions: {
      initialReconnectionDelay: 100, maxReconnectionDelay: 1000, reconnectionDelayGrowFactor: 1.5, maxRetries: 2,
    },
  });
  const client = new Client({ name: 'airlock-ts-test-client', version: '1.0.0' }, { capabilities: {} });
  client.onerror = (err) => transportErrors.push(String(err?.message ?? err));
  client.fallbackNotificationHandler = async (n) => {
    notifications.push(n);
  };

  const connected = await finish(0, 'connect', async () => {
    await client.connect(transport, { timeout: 30000 });
    return {
      serverInfo: client.getServerVersion(),
      capabilities: client.getServerCapabilities(),
      instructions: client.getInstructions(),
      protocolVersion: transport.protocolVersion,
      sessionId: transport.sessionId,
    };
  });
  if (!connected) return;

  for (const [i, s] of steps.entries()) {
    const options = { timeout: s.timeoutMs ?? 30000 };
    await finish(i + 1, s.op, async (progress) => {
      switch (s.op) {
        case 'listTools': return client.listTools({}, options);
        case 'callTool':
          if (s.progress) options.onprogress = (p) => progress.push(p);
          return client.callTool({ name: s.name, arguments: s.arguments ?? {} }, undefined, options);
        case 'listResources': return client.listResources({}, options);
        case 'readResource': return client.readResource({ uri: s.uri }, options);
        case 'listPrompts': return client.listPrompts({}, options);
        case 'getPrompt': return client.getPrompt({ name: s.name, arguments: s.arguments ?? {} }, options);
        case 'ping': return client.ping(options);
        case 'setLoggingLevel': return client.setLoggingLevel(s.level, options);
        case 'request':
          if (s.progress) options.onprogress = (p) => progress.push(p);
          return client.request({ method: s.method, params: s.params }, ResultSchema, options);
        case 'terminateSession':
          await transport.terminateSession();
          return {};
        default: throw new Error(`unknown step op ${JSON.stringify(s.op)}`);
      }
    });
  }
  await client.close().catch(() => {});
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`client.mjs: ${err?.stack ?? err}`);
    process.exit(1);
  },
);
