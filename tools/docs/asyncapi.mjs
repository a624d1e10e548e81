// Validates the AsyncAPI documents `courier docs` writes with the official
// parser (@asyncapi/parser): AsyncAPI 3.1, no error or warning diagnostics,
// every message used by an operation, every message with a draft-07 payload
// schema requiring its `type` and an example, every schema titled (so that
// generators do not invent `AnonymousSchema_N` names), the three encodings
// in `x-courier-encodings`, and the SSE transport (`/sse`, `/publish`).
import fs from 'node:fs';
import path from 'node:path';
import { Parser } from '@asyncapi/parser';
import { generateDocs, Tally } from './generate.mjs';

const t = new Tally('asyncapi');
const dir = generateDocs();
const parser = new Parser();
// Spectral severities: 0 error, 1 warning, 2 information, 3 hint.
const BLOCKING = new Set([0, 1]);
for (const file of ['asyncapi.yaml', 'asyncapi-v1.yaml']) {
  const source = fs.readFileSync(path.join(dir, file), 'utf8');
  const { document, diagnostics } = await parser.parse(source, { source: file });
  for (const d of diagnostics) {
    const line = `${file}: [${d.severity}] ${d.code}: ${d.message} at ${JSON.stringify(d.path)}`;
    if (BLOCKING.has(d.severity)) console.error(line); else console.log(line);
  }
  t.check(document !== undefined, `${file} does not parse`);
  t.check(!diagnostics.some((d) => BLOCKING.has(d.severity)), `${file} has error or warning diagnostics`);
  if (!document) continue;
  t.check(document.version() === '3.1.0', `${file}: version ${document.version()}`);
  const channels = document.channels().all();
  const byAddress = new Map(channels.map((c) => [c.address(), c]));
  t.check(channels.length === 3 && ['/ws', '/sse', '/publish'].every((a) => byAddress.has(a)), `${file}: expected the /ws, /sse and /publish channels`);
  t.check(byAddress.get('/ws')?.bindings().has('ws'), `${file}: /ws has no ws binding`);
  t.check(byAddress.get('/sse')?.bindings().has('http'), `${file}: /sse has no http binding`);
  t.check(byAddress.get('/sse')?.servers().all().some((s) => s.protocol() === 'http'), `${file}: /sse is not on the http server`);
  const sseTypes = byAddress.get('/sse')?.messages().all().map((m) => m.id()).sort() ?? [];
  t.check(JSON.stringify(sseTypes) === JSON.stringify(['disconnect', 'error', 'message', 'ping', 'subscribe_ack', 'welcome']), `${file}: SSE events ${sseTypes}`);
  const encodings = document.json()['x-courier-encodings'] ?? [];
  const types = encodings.map((e) => e.contentType).sort();
  t.check(JSON.stringify(types) === JSON.stringify(['application/json', 'application/vnd.msgpack', 'application/x-protobuf']), `${file}: x-courier-encodings content types ${types}`);
  const v = file === 'asyncapi.yaml' ? 2 : 1;
  t.check(encodings.every((e) => e.subprotocol.startsWith(`courier.v${v}.`)), `${file}: subprotocols of another version`);
  // Every schema a generator would name: titled.
  const untitled = document.components().schemas().all().filter((s) => !s.title()).map((s) => s.id());
  t.check(untitled.length === 0, `${file}: schemas without a title: ${untitled.slice(0, 5)}`);
  const used = new Set();
  for (const op of document.operations().all()) {
    for (const m of op.messages().all()) used.add(m.id());
    const reply = op.reply();
    if (reply) for (const m of reply.messages().all()) t.check(m.id() !== undefined, `${file}: ${op.id()} reply message unresolved`);
  }
  const messages = document.components().messages().all();
  const expected = file === 'asyncapi.yaml' ? 23 : 21;
  t.check(messages.length === expected, `${file}: ${messages.length} messages, expected ${expected}`);
  for (const m of messages) {
    t.check(used.has(m.id()), `${file}: message ${m.id()} is used by no operation`);
    t.check(m.schemaFormat() === 'application/schema+json;version=draft-07', `${file}: ${m.id()} payload is not draft-07`);
    const payload = m.payload();
    const typeConst = payload?.properties()?.type?.const();
    t.check(typeConst === m.id(), `${file}: ${m.id()} payload's type const is ${typeConst}`);
    t.check((payload?.required() ?? []).includes('type'), `${file}: ${m.id()} payload does not require type`);
    t.check(Boolean(payload?.title()), `${file}: ${m.id()} payload has no title`);
    t.check(m.examples().all().length > 0, `${file}: ${m.id()} has no example`);
  }
}
fs.rmSync(dir, { recursive: true, force: true });
t.finish();
