// An MCP server built with the TypeScript SDK's Express app
// (createMcpExpressApp: express.json() decodes each body with the charset
// and the Content-Encoding the request names), for airlock's adversarial
// end-to-end tests. It records what it received and what it ran, so a
// test can prove a held or denied call never executed.
//
//   PORT=0 TS_RECORD=/tmp/rec.jsonl TS_BEARER=<credential> node tsserver.mjs
//
// Endpoints (both Streamable HTTP):
//   /mcp        stateful: Mcp-Session-Id issued on initialize, GET stream, DELETE
//   /stateless  one server and transport per POST, JSON answers, no sessions
//   /__ready    answers 200 "tsserver ready" (not recorded, no credential)
// Every other request (any method, any path, /mcp/admin/... included) is
// recorded, then answered 401 without "Authorization: Bearer <TS_BEARER>",
// else handed to the Express app (which answers 404 for unknown paths).
//
// TS_RECORD gets one JSON line per observation, written before the answer:
//   {"kind":"http","method","path","principal","credential":bool,"contentType","contentEncoding","override"}
//   {"kind":"parsed","path","principal","body":<what express.json() decoded>}
//   {"kind":"tool","name","arguments","principal"}
//   {"kind":"completion","ref","argument","principal"}
//   {"kind":"prompt","name","principal"}
// principal is the x-airlock-principal header airlock sets upstream.
// The bearer credential itself is never written.
//
// Stdout gets "tsserver listening on <port>" once listening.
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import * as z from 'zod/v4';

const recordFile = process.env.TS_RECORD;
const bearer = process.env.TS_BEARER ?? '';
if (!recordFile) {
  console.error('TS_RECORD is required');
  process.exit(2);
}

function record(line) {
  appendFileSync(recordFile, `${JSON.stringify(line)}\n`);
}

function principalOf(headers) {
  if (!headers) return '';
  const v = typeof headers.get === 'function' ? headers.get('x-airlock-principal') : headers['x-airlock-principal'];
  return v ?? '';
}

// Tools whose names a naive allow-list lets through; each run is recorded.
export const toolNames = [
  'echo',
  'delete_all',
  'DELETE_all',
  'removeUser',
  'repoDelete',
  'repo-delete',
  'repo.delete',
  'get-env',
  'echo\u200b', // zero-width space
  'ech\u043e', // Cyrillic o: mixed script
  '\u202eecho', // right-to-left override
];

function newServer() {
  const server = new McpServer({ name: 'airlock-ts-test-server', version: '1.0.0' }, { capabilities: { logging: {}, completions: {} } });
  for (const name of toolNames) {
    server.registerTool(name, {
      description: name === 'echo' ? 'Returns its text argument unchanged.' : `Test tool ${JSON.stringify(name)}: records that it ran.`,
      inputSchema: { text: z.string().optional(), target: z.string().optional() },
    }, async (args, extra) => {
      record({ kind: 'tool', name, arguments: args ?? {}, principal: principalOf(extra?.requestInfo?.headers) });
      const text = name === 'echo' ? (args?.text ?? '') : `${name} ran`;
      return { content: [{ type: 'text', text }] };
    });
  }
  for (const name of ['triage', 'secret_prompt']) {
    server.registerPrompt(name, {
      description: `Prompt ${name}.`,
      argsSchema: {
        topic: completable(z.string(), (value) => {
          record({ kind: 'completion', ref: name, argument: 'topic', value, principal: '' });
          return ['alpha', 'beta'].filter((s) => s.startsWith(value ?? ''));
        }),
      },
    }, async ({ topic }, extra) => {
      record({ kind: 'prompt', name, principal: principalOf(extra?.requestInfo?.headers) });
      return { messages: [{ role: 'user', content: { type: 'text', text: `${name}: ${topic}` } }] };
    });
  }
  return server;
}

const app = createMcpExpressApp();

// Record what express.json() decoded, before the SDK acts on it.
app.use((req, _res, next) => {
  if (req.body !== undefined) {
    record({ kind: 'parsed', path: req.path, principal: principalOf(req.headers), body: req.body });
  }
  next();
});

const transports = new Map(); // session id → transport

app.all('/mcp', async (req, res) => {
  try {
    const sid = req.headers['mcp-session-id'];
    let transport = sid ? transports.get(sid) : undefined;
    if (!transport) {
      if (sid) {
        res.status(404).json({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null });
        return;
      }
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => transports.set(id, transport),
      });
      transport.onclose = () => {
        if (transport.sessionId) transports.delete(transport.sessionId);
      };
      await newServer().connect(transport);
    }
    await transport.handleRequest(req, res, req.body);
  } catch (err) {
    console.error('tsserver /mcp:', err);
    if (!res.headersSent) res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'internal error' }, id: null });
  }
});

app.post('/stateless', async (req, res) => {
  const server = newServer();
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  res.on('close', () => {
    transport.close();
    server.close();
  });
  try {
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  } catch (err) {
    console.error('tsserver /stateless:', err);
    if (!res.headersSent) res.status(500).json({ jsonrpc: '2.0', error: { code: -32603, message: 'internal error' }, id: null });
  }
});

const http = createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/__ready') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('tsserver ready');
    return;
  }
  const credential = bearer !== '' && req.headers.authorization === `Bearer ${bearer}`;
  record({
    kind: 'http',
    method: req.method,
    path: req.url,
    principal: principalOf(req.headers),
    credential,
    authorization: req.headers.authorization !== undefined,
    contentType: req.headers['content-type'] ?? '',
    contentEncoding: req.headers['content-encoding'] ?? '',
    acceptEncoding: req.headers['accept-encoding'] ?? '',
    override: req.headers['x-http-method-override'] ?? req.headers['x-method-override'] ?? req.headers['x-http-method'] ?? '',
    sessionId: req.headers['mcp-session-id'] ?? '',
  });
  if (!credential) {
    res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer error="invalid_token"' }).end('upstream credential missing or wrong');
    return;
  }
  app(req, res);
});

http.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  console.log(`tsserver listening on ${http.address().port}`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    http.close();
    process.exit(0);
  });
}
