// Validates the AsyncAPI documents `courier docs` writes with the official
// parser (@asyncapi/parser): no error or warning diagnostics, every message
// used by an operation, every message with a draft-07 payload schema and
// an example.
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
  t.check(document.version() === '3.0.0', `${file}: version ${document.version()}`);
  const channels = document.channels().all();
  t.check(channels.length === 1 && channels[0].address() === '/ws', `${file}: expected the single /ws channel`);
  t.check(channels[0].bindings().has('ws'), `${file}: the channel has no ws binding`);
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
    t.check(m.examples().all().length > 0, `${file}: ${m.id()} has no example`);
  }
}
fs.rmSync(dir, { recursive: true, force: true });
t.finish();
