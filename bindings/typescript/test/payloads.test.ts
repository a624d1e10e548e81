// Typed payloads generated for a user's protos (examples/chat: maps with string, integer and bool
// keys, oneofs of scalars, enums and messages, nested enums, optional fields, imports across
// packages) agree with the Rust codec byte for byte: every fixture of
// examples/chat/fixtures/payloads.json (written by Rust) reads, and writes back to the same JSON
// text, MessagePack bytes and Protobuf bytes; non-canonical inputs read as Rust reads them; inputs
// Rust rejects are rejected. `npm test` generates ./gen/ from examples/chat/proto first.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import { Codec } from "../src/codec.js";
import { EncodeError, WireError } from "../src/runtime/errors.js";
import { parseJson, stringifyJson } from "../src/runtime/json.js";
import { decodeMsgpack, encodeMsgpack } from "../src/runtime/msgpack.js";
import { payloadBytes } from "../src/runtime/payload.js";
import type { Wire, WireObject } from "../src/runtime/wire.js";
import * as modPb from "./gen/chat/moderation/v1/proto.js";
import type * as modT from "./gen/chat/moderation/v1/types.js";
import * as mod from "./gen/chat/moderation/v1/wire.js";
import * as chatPb from "./gen/chat/v1/proto.js";
import type * as chatT from "./gen/chat/v1/types.js";
import * as chat from "./gen/chat/v1/wire.js";

interface Valid {
  name: string;
  type: string;
  json: string;
  msgpack: string;
  protobuf: string | null;
}
interface Decode {
  name: string;
  type: string;
  input: string;
  json: string;
}
interface Invalid {
  name: string;
  type: string;
  input: string;
}
interface Fixtures {
  valid: Valid[];
  decode: Decode[];
  invalid: Invalid[];
}

const fixtures = parseJson(
  readFileSync(new URL("../../../../examples/chat/fixtures/payloads.json", import.meta.url), "utf8"),
) as unknown as Fixtures;

/** The generated functions of one message type, with the types erased for table-driven tests. */
interface Codecs {
  read(v: Wire): object;
  write(m: object): WireObject;
  toBinary(m: object): Uint8Array;
  fromBinary(b: Uint8Array): object;
}

function codecs<I extends object, T extends I>(
  read: (v: Wire) => T,
  write: (m: I) => WireObject,
  toBinary: (m: I) => Uint8Array,
  fromBinary: (b: Uint8Array) => T,
): Codecs {
  return {
    read,
    write: (m) => write(m as I),
    toBinary: (m) => toBinary(m as I),
    fromBinary,
  };
}

const TYPES: { [name: string]: Codecs } = {
  "chat.v1.ChatMessage": codecs(chat.readChatMessage, chat.writeChatMessage, chatPb.toBinaryChatMessage, chatPb.fromBinaryChatMessage),
  "chat.v1.ReadMarker": codecs(chat.readReadMarker, chat.writeReadMarker, chatPb.toBinaryReadMarker, chatPb.fromBinaryReadMarker),
  "chat.v1.TypingState": codecs(chat.readTypingState, chat.writeTypingState, chatPb.toBinaryTypingState, chatPb.fromBinaryTypingState),
  "chat.moderation.v1.ModerationEvent": codecs(
    mod.readModerationEvent,
    mod.writeModerationEvent,
    modPb.toBinaryModerationEvent,
    modPb.fromBinaryModerationEvent,
  ),
};

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "hex"));
const type = (name: string): Codecs => TYPES[name] ?? assert.fail(`no codecs for ${name}`);

describe("chat payload fixtures: valid", () => {
  assert.ok(fixtures.valid.length >= 10);
  for (const f of fixtures.valid) {
    test(f.name, () => {
      const c = type(f.type);
      const value = c.read(parseJson(f.json));
      // JSON and MessagePack: the same data model, written canonically.
      assert.equal(stringifyJson(c.write(value)), f.json, "JSON text");
      assert.equal(hex(encodeMsgpack(c.write(value))), f.msgpack, "MessagePack bytes");
      assert.equal(hex(payloadBytes(c.write(value), "payload")), f.msgpack, "payload bytes (Protobuf frames)");
      assert.deepEqual(c.read(decodeMsgpack(unhex(f.msgpack))), value, "read from MessagePack");
      // Protobuf, when Rust's bytes are deterministic (at most one entry per map).
      if (f.protobuf !== null) {
        assert.deepEqual(c.fromBinary(unhex(f.protobuf)), value, "read from Protobuf");
        assert.equal(hex(c.toBinary(value)), f.protobuf, "Protobuf bytes");
      } else {
        const bytes = c.toBinary(value);
        assert.deepEqual(c.fromBinary(bytes), value, "Protobuf round trip");
        assert.equal(hex(c.toBinary(c.fromBinary(bytes))), hex(bytes), "Protobuf bytes are deterministic");
      }
    });
  }
});

describe("chat payload fixtures: in envelopes", () => {
  for (const f of fixtures.valid) {
    test(f.name, () => {
      const c = type(f.type);
      const value = c.read(parseJson(f.json));
      const json = new Codec({ version: 2, encoding: "json" });
      const frame = json.encode({ type: "publish", id: "p", channel: "c", payload: c.write(value) });
      assert.equal(frame, `{"type":"publish","id":"p","channel":"c","payload":${f.json}}`);
      for (const encoding of ["msgpack", "proto"] as const) {
        const codec = new Codec({ version: 2, encoding });
        const env = codec.decode(codec.encode({ type: "publish", id: "p", channel: "c", payload: c.write(value) }));
        assert.equal(env.type, "publish");
        assert.ok(env.type === "publish" && env.payload !== undefined);
        // The relayed payload is an untyped tree; read typed, it writes the same JSON again.
        const got = c.read(env.payload);
        assert.deepEqual(got, value, encoding);
        assert.equal(stringifyJson(c.write(got)), f.json, encoding);
      }
    });
  }
});

describe("chat payload fixtures: non-canonical input reads as Rust reads it", () => {
  for (const f of fixtures.decode) {
    test(f.name, () => {
      const c = type(f.type);
      assert.equal(stringifyJson(c.write(c.read(parseJson(f.input)))), f.json);
    });
  }
});

describe("chat payload fixtures: invalid input is a WireError", () => {
  for (const f of fixtures.invalid) {
    test(f.name, () => {
      const c = type(f.type);
      assert.throws(() => c.read(parseJson(f.input)), WireError);
    });
  }
});

describe("maps and oneofs: the generated types", () => {
  test("a typed value written, published and read back, narrowed with `in`", () => {
    const init: chatT.ChatMessageInit = {
      id: "m-1",
      body: { image: { url: "u", width: 2 } },
      metadata: { client: "web/1.0", "10": "ten", "9": "nine" },
      read_counts: { "u-grace": 3 },
    };
    const codec = new Codec({ version: 2, encoding: "msgpack" });
    const env = codec.decode(codec.encode({ type: "publish", id: "p", channel: "room.lobby", payload: chat.writeChatMessage(init) }));
    assert.ok(env.type === "publish" && env.payload !== undefined);
    const msg: chatT.ChatMessage = chat.readChatMessage(env.payload);
    const body: chatT.ChatMessage_Body | undefined = msg.body;
    assert.ok(body !== undefined && "image" in body);
    assert.equal(body.image.width, 2);
    assert.deepEqual(msg.metadata, { client: "web/1.0", "10": "ten", "9": "nine" });
    assert.equal(msg.read_counts["u-grace"], 3);
    // Integer and bool keys: numbers index 32-bit keys, 64-bit keys are decimal strings.
    const ev = mod.readModerationEvent(mod.writeModerationEvent({ strikes: { 3: "ACTION_BAN" }, notes: { true: "yes" }, reviews: { "-1": true } }));
    assert.equal(ev.strikes[3], "ACTION_BAN");
    assert.equal(ev.notes.true, "yes");
    assert.equal(ev.notes.false, undefined);
    assert.equal(ev.reviews["-1"], true);
  });
});

describe("maps and oneofs: writers refuse what the types refuse", () => {
  test("two oneof members set", () => {
    const m = { body: { text: "a", image: { url: "u" } } } as unknown as chatT.ChatMessageInit;
    assert.throws(() => chat.writeChatMessage(m), EncodeError);
    assert.throws(() => chatPb.toBinaryChatMessage(m), EncodeError);
  });
  test("a oneof member set to undefined does not count", () => {
    const m = { body: { text: "a", image: undefined } } as unknown as chatT.ChatMessageInit;
    assert.equal(stringifyJson(chat.writeChatMessage(m)), '{"body":{"text":"a"}}');
  });
  test("integer keys that are not integers of the key type", () => {
    for (const strikes of [{ x: "ACTION_BAN" }, { "4294967296": "ACTION_BAN" }, { "-1": "ACTION_BAN" }, { "1.5": "ACTION_BAN" }]) {
      const m = { strikes } as unknown as modT.ModerationEventInit;
      assert.throws(() => mod.writeModerationEvent(m), EncodeError, JSON.stringify(strikes));
      assert.throws(() => modPb.toBinaryModerationEvent(m), EncodeError, JSON.stringify(strikes));
    }
  });
  test("two keys naming one integer", () => {
    const m = { strikes: { "7": "ACTION_BAN", "07": "ACTION_WARN" } } as unknown as modT.ModerationEventInit;
    assert.throws(() => mod.writeModerationEvent(m), EncodeError);
  });
  test("a JavaScript Map is not a map field", () => {
    const m = { metadata: new Map([["a", "b"]]) } as unknown as chatT.ChatMessageInit;
    assert.throws(() => chat.writeChatMessage(m), EncodeError);
  });
  test("noncanonical integer keys are written canonically", () => {
    const m = { strikes: { "+7": "ACTION_BAN", "010": "ACTION_WARN" } } as unknown as modT.ModerationEventInit;
    assert.equal(stringifyJson(mod.writeModerationEvent(m)), '{"strikes":{"7":"ACTION_BAN","10":"ACTION_WARN"}}');
  });
  test("64-bit keys beyond 2^53 stay exact", () => {
    const m: modT.ModerationEventInit = { reviews: { "9007199254740993": true, "-9223372036854775808": false } };
    const text = '{"reviews":{"-9223372036854775808":false,"9007199254740993":true}}';
    assert.equal(stringifyJson(mod.writeModerationEvent(m)), text);
    const back = modPb.fromBinaryModerationEvent(modPb.toBinaryModerationEvent(m));
    assert.deepEqual(back.reviews, { "9007199254740993": true, "-9223372036854775808": false });
  });
});

describe("maps and oneofs: Protobuf decoding", () => {
  test("a map entry without key or value holds the defaults", () => {
    // strikes (10): an entry with only the value 3; evidence (11): an empty entry.
    const ev = modPb.fromBinaryModerationEvent(unhex("52021003" + "5a00"));
    assert.deepEqual(ev.strikes, { "0": "ACTION_BAN" });
    assert.deepEqual(ev.evidence, { "": new Uint8Array(0) });
  });
  test("a repeated key keeps the last value; entries merge across the message", () => {
    // strikes {1: WARN}, then {1: MUTE}, then {2: BAN}.
    const ev = modPb.fromBinaryModerationEvent(unhex("520408011001" + "520408011002" + "520408021003"));
    assert.deepEqual(ev.strikes, { "1": "ACTION_MUTE", "2": "ACTION_BAN" });
  });
  test("of several oneof members the last one counts; a repeated message member merges", () => {
    // body: text "a" (7), then image {url "u"} (8), then image {width 5} (8).
    const m = chatPb.fromBinaryChatMessage(unhex("3a0161" + "4203" + "0a0175" + "4202" + "1005"));
    assert.deepEqual(m.body, { image: { url: "u", width: 5, height: 0, thumbnail: new Uint8Array(0) } });
  });
  test("a map entry field of the wrong wire type is a WireError", () => {
    // strikes entry whose key (field 1) arrives length-delimited.
    assert.throws(() => modPb.fromBinaryModerationEvent(unhex("5203" + "0a0131")), WireError);
  });
  test("a map entry running past its message is a WireError", () => {
    assert.throws(() => modPb.fromBinaryModerationEvent(unhex("5205" + "0801")), WireError);
  });
  test("a uint64 map value beyond 2^53-1 is a WireError (ENC-INT53)", () => {
    // read_counts (14): {"a": 2^53}, the value a varint of 8 bytes.
    assert.throws(() => chatPb.fromBinaryChatMessage(unhex("720c" + "0a0161" + "10" + "8080808080808010")), WireError);
  });
});
