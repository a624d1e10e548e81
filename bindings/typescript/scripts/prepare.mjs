// `prepare` (npm runs it for `npm pack`, `npm publish`, `npm install` in this directory, and
// when a user installs the package from a path or a git URL): compiles src/ to dist/, which the
// package's `exports` point at and git does not hold.
//
// Installed from a path, npm links this directory without its devDependencies: TypeScript is
// then installed here first, from the committed lockfile (`npm ci --ignore-scripts`).

import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const tsc = join(pkg, "node_modules/typescript/bin/tsc");
const run = (cmd, args) => {
  console.error(`@courier/client prepare: ${cmd} ${args.join(" ")}`);
  execFileSync(cmd, args, { stdio: ["ignore", "inherit", "inherit"], cwd: pkg });
};

if (!existsSync(tsc)) {
  const npm = process.env.npm_execpath;
  // npm_execpath is npm's CLI script when npm runs us; plain `npm` otherwise.
  if (npm && npm.endsWith(".js")) run(process.execPath, [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"]);
  else run("npm", ["ci", "--ignore-scripts", "--no-audit", "--no-fund"]);
}
run(process.execPath, [tsc, "-p", "tsconfig.json"]);
