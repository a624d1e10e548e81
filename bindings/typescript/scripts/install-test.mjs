// The package as users install it (README "Install" and "Example"), run by `cargo xtask ci`:
//   1. `npm pack` here (the `prepare` script builds dist/); the tarball holds dist/.
//   2. a fresh `npm init -y` project (CommonJS by default) installs the tarball; the README's
//      example, saved as chat.mjs as the README says, runs against `courier serve`.
//   3. a second fresh project installs a clean copy of this directory (no node_modules, no dist:
//      what a git checkout has) by path, and runs the same example.
// The example's `ws://127.0.0.1:8080/ws` is pointed at the server's free port; nothing else of
// it changes. Needs $COURIER_BIN (or ../../target/debug/courier) and the npm registry (or cache).

import { execFileSync, spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const root = resolve(pkg, "../..");
const courier = process.env.COURIER_BIN ?? join(process.env.CARGO_TARGET_DIR ? resolve(root, process.env.CARGO_TARGET_DIR) : join(root, "target"), "debug/courier");
const npm = (args, cwd) => {
  console.error(`$ (cd ${cwd}) npm ${args.join(" ")}`);
  return execFileSync("npm", [...args, "--no-audit", "--no-fund", "--loglevel=error"], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
};
const fail = (msg) => {
  console.error(`install test: ${msg}`);
  process.exit(1);
};

// The README's first ```js block after "## Example".
const readme = readFileSync(join(pkg, "README.md"), "utf8");
const example = /## Example\n[\s\S]*?```js\n([\s\S]*?)```/.exec(readme)?.[1];
if (!example) fail("README.md has no ```js block under ## Example");
const DEFAULT_URL = "ws://127.0.0.1:8080/ws";
if (example.split(DEFAULT_URL).length !== 2) fail(`the example should name ${DEFAULT_URL} once`);

const work = mkdtempSync(join(tmpdir(), "courier-install-"));
const server = await startServer();
try {
  // 1. npm pack
  const packed = JSON.parse(npm(["pack", "--json", "--pack-destination", work], pkg))[0];
  const files = packed.files.map((f) => f.path);
  for (const need of ["dist/index.js", "dist/index.d.ts", "dist/runtime/index.js", "dist/react.js", "package.json", "README.md"]) {
    if (!files.includes(need)) fail(`the tarball lacks ${need} (has ${files.length} files)`);
  }
  const tarball = join(work, packed.filename);

  // 2. a fresh project installs the tarball
  await tryExample("from-tarball", tarball);

  // 3. a fresh project installs a clean checkout of the package by path
  const checkout = join(work, "checkout/bindings/typescript");
  const skip = new Set(["node_modules", "dist", "build", "test-artifacts"]);
  cpSync(pkg, checkout, {
    recursive: true,
    filter: (src) => !skip.has(src.slice(pkg.length + 1).split("/")[0]) && !src.endsWith(".tgz"),
  });
  await tryExample("from-path", checkout);
  if (!existsSync(join(checkout, "dist/index.js"))) fail("installing by path did not build dist/");
} finally {
  server.kill("SIGTERM");
  rmSync(work, { recursive: true, force: true });
}
console.error("install test: tarball and path installs run the README example");

async function tryExample(name, spec) {
  const app = join(work, name);
  mkdirSync(app);
  npm(["init", "-y"], app);
  npm(["install", spec], app);
  const deps = JSON.parse(readFileSync(join(app, "package.json"), "utf8")).dependencies ?? {};
  if (!("@courier/client" in deps)) fail(`${name}: @courier/client not in package.json dependencies`);
  writeFileSync(join(app, "chat.mjs"), example.replace(DEFAULT_URL, server.url));
  const out = await runNode(app, "chat.mjs");
  if (out.code !== 0 || !/^received chat \d+ \{"text":"hello"\}$/m.test(out.stdout) || !/^stored as /m.test(out.stdout)) {
    fail(`${name}: node chat.mjs exited ${out.code}\nstdout:\n${out.stdout}\nstderr:\n${out.stderr}`);
  }
  console.error(`install test: ${name}: node chat.mjs printed\n${out.stdout.trim()}`);
}

function runNode(cwd, file) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [file], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("exit", (code) => (clearTimeout(timer), resolve({ code, stdout, stderr })));
  });
}

function startServer() {
  if (!existsSync(courier)) fail(`${courier} is missing: cargo build -p courier-cli (or set COURIER_BIN)`);
  return new Promise((resolve, reject) => {
    const child = spawn(courier, ["serve", "--listen", "127.0.0.1:0", "--log", "warn"], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    const timer = setTimeout(() => reject(new Error(`courier serve did not start: ${out}`)), 15_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = /courier: listening on (ws:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1], kill: (s) => child.kill(s) });
      }
    });
    child.on("exit", (code) => (clearTimeout(timer), reject(new Error(`courier serve exited with ${code}`))));
  });
}
