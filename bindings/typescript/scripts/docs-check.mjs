// Type-checks the TypeScript examples of the docs as a user's code: every ```ts, ```tsx and ```js
// block of README.md and ../../docs/typescript.md becomes a module in build/docs-check/ that
// imports `@courier/client` (resolved through this package's own `exports`, i.e. dist/ as users
// get it) and `./gen/...` (what `courier gen ts` writes for examples/chat/proto), compiled with
// tsc under this package's strict settings. Names an example leaves to the reader (`client`,
// `render`, ...) are declared in scripts/docs-globals.d.ts.
//
// Usage: node scripts/docs-check.mjs COURIER_BIN (npm test runs it after building dist/).

import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const root = resolve(pkg, "../..");
const courier = process.argv[2];
const out = join(pkg, "build/docs-check");
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const chatProto = join(root, "examples/chat/proto");
execFileSync(
  courier,
  ["gen", "ts", "--out", join(out, "gen"), "--include", chatProto, "--proto", join(chatProto, "chat/v1/chat.proto"), "--proto", join(chatProto, "chat/moderation/v1/moderation.proto")],
  { stdio: "ignore" },
);
copyFileSync(join(pkg, "scripts/docs-globals.d.ts"), join(out, "globals.d.ts"));

const sources = [join(pkg, "README.md"), join(root, "docs/typescript.md")];
const where = new Map();
let count = 0;
for (const file of sources) {
  const lines = readFileSync(file, "utf8").split("\n");
  let block = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (block === null) {
      const m = /^```(ts|tsx|js)\s*$/.exec(line);
      if (m) block = { lang: m[1], start: i + 1, body: [] };
    } else if (line.startsWith("```")) {
      const ext = block.lang === "tsx" ? "tsx" : "ts";
      const name = `${relative(root, file).replace(/[/.]/g, "_")}_L${block.start}.${ext}`;
      // `export {}` makes each block its own module (its names, top-level await).
      writeFileSync(join(out, name), `${block.body.join("\n")}\nexport {};\n`);
      where.set(name, `${relative(root, file)}:${block.start + 1}`);
      count++;
      block = null;
    } else {
      block.body.push(line);
    }
  }
}

writeFileSync(
  join(out, "tsconfig.json"),
  JSON.stringify({
    extends: join(pkg, "tsconfig.json"),
    compilerOptions: { noEmit: true, rootDir: ".", jsx: "react-jsx", types: ["node"], noUnusedLocals: false },
    include: ["./**/*.ts", "./**/*.tsx"],
  }),
);
try {
  execFileSync(process.execPath, [join(pkg, "node_modules/typescript/bin/tsc"), "-p", join(out, "tsconfig.json")], { cwd: out, encoding: "utf8" });
} catch (e) {
  // Point at the Markdown line, not at the scratch file.
  const text = String(e.stdout ?? e).replace(/^([\w.]+)\((\d+),(\d+)\)/gm, (_, f, l, c) => {
    const at = where.get(f);
    if (!at) return `${f}(${l},${c})`;
    const [doc, start] = at.split(":");
    return `${doc}:${Number(start) + Number(l) - 1}:${c}`;
  });
  console.error(`docs examples do not type-check (names they leave undeclared go in scripts/docs-globals.d.ts):\n${text}`);
  process.exit(1);
}
console.error(`docs examples: ${count} blocks type-check`);
