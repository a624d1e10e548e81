// `npm test`: every check of the TypeScript package, in the order that fails fastest.
//   1. `courier gen ts` for examples/chat/proto into test/gen/, then tsc --strict: the package
//      (to dist/) and the tests (to build/)
//   2. the checked-in bindings (src/gen) equal what `courier gen ts` writes now, and code
//      generated for a user's payload proto compiles under --strict
//   3. the browser test pages are bundled (esbuild): the plain client, React, tabs sharing a connection
//   4. Debian's chromium is installed if missing (the browser test drives it)
//   5. node:test runs the vector, live interop and browser tests
// The live and browser tests run the reference server: ../../target/debug/courier (built by
// `cargo xtask ci`) or $COURIER_BIN.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const root = resolve(pkg, "../..");
const bin = (name) => join(pkg, "node_modules", ".bin", name);
const run = (cmd, args, opts = {}) => {
  console.error(`$ ${cmd} ${args.join(" ")}`);
  execFileSync(cmd, args, { stdio: "inherit", cwd: pkg, ...opts });
};

rmSync(join(pkg, "build"), { recursive: true, force: true });
const courier = process.env.COURIER_BIN ?? join(root, "target/debug/courier");
if (!existsSync(courier)) {
  console.error(`${courier} is missing: build it with \`cargo build -p courier-cli\` (cargo xtask ci does)`);
  process.exit(1);
}
// TypeScript for the chat example's payload protos (maps, oneofs, imports across packages), which
// test/payloads.test.ts checks byte for byte against the Rust codec's fixtures.
const chatGen = join(pkg, "test/gen");
const chatProto = join(root, "examples/chat/proto");
rmSync(chatGen, { recursive: true, force: true });
run(
  courier,
  ["gen", "ts", "--out", chatGen, "--include", chatProto, "--proto", join(chatProto, "chat/v1/chat.proto"), "--proto", join(chatProto, "chat/moderation/v1/moderation.proto"), "--runtime-import", "../../src/runtime/index.js"],
  { stdio: "ignore" },
);

run(bin("tsc"), ["-p", "tsconfig.json"]);
run(bin("tsc"), ["-p", "tsconfig.test.json"]);
// The checked-in bindings must be what the generator writes today.
const fresh = join(pkg, "build/gen-fresh");
run(courier, ["gen", "ts", "--out", fresh, "--runtime-import", "../runtime/index.js"], { stdio: "ignore" });
const listAll = (dir, base = dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listAll(join(dir, e.name), base) : [join(dir, e.name).slice(base.length + 1)]));
const want = listAll(fresh).sort();
const have = listAll(join(pkg, "src/gen")).sort();
const stale = [...new Set([...want, ...have])].filter(
  (f) => !want.includes(f) || !have.includes(f) || readFileSync(join(fresh, f), "utf8") !== readFileSync(join(pkg, "src/gen", f), "utf8"),
);
if (stale.length > 0) {
  console.error(`stale: run \`cargo xtask codegen\` (${stale.join(", ")})`);
  process.exit(1);
}

const userGen = join(pkg, "build/gen-user");
run(courier, ["gen", "ts", "--out", userGen, "--proto", join(root, "codegen/tests/ts_fixtures/chat.proto"), "--runtime-import", join(pkg, "src/runtime/index.js")]);
writeFileSync(
  join(userGen, "tsconfig.json"),
  JSON.stringify({ extends: join(pkg, "tsconfig.json"), compilerOptions: { noEmit: true, rootDir: "/" }, include: ["./**/*.ts"] }),
);
run(bin("tsc"), ["-p", join(userGen, "tsconfig.json")]);

mkdirSync(join(pkg, "build/browser"), { recursive: true });
const bundle = (entry, out, extra = []) =>
  run(bin("esbuild"), [entry, "--bundle", "--format=esm", "--target=es2022", `--outfile=${out}`, "--log-level=warning", ...extra]);
bundle("test/browser/page.ts", "build/browser/page.js");
// React's development build, so that StrictMode mounts twice (test/react.test.ts counts joins).
bundle("test/react/page.ts", "build/react/page.js", ["--define:process.env.NODE_ENV=\"development\""]);
bundle("test/shared/page.ts", "build/shared/page.js");
bundle("test/shared/worker.ts", "build/shared/worker.js");

const chromium = process.env.CHROMIUM ?? "/usr/bin/chromium";
if (!existsSync(chromium)) {
  // Debian's package: nothing is downloaded from outside the package registries.
  const sudo = process.getuid?.() === 0 ? [] : ["sudo"];
  const apt = (args) => run(sudo[0] ?? "apt-get", sudo.length ? ["apt-get", ...args] : args, { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  apt(["update"]);
  apt(["install", "-y", "--no-install-recommends", "chromium"]);
}

const tests = readdirSync(join(pkg, "build/test")).filter((f) => f.endsWith(".test.js")).map((f) => `build/test/${f}`);
run(process.execPath, ["--test", "--test-concurrency=1", ...tests]);
