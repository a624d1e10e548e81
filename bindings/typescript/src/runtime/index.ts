// The Courier TypeScript runtime: what generated code imports (`rt`), and the building blocks
// of the codecs. Applications rarely need more than `Payload` and the error classes.

export * from "./base64.js";
export * from "./errors.js";
export * from "./json.js";
export * from "./maps.js";
export * from "./msgpack.js";
export * from "./payload.js";
export * from "./proto.js";
export * from "./wire.js";
