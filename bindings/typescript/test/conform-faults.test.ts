// The client conformance suite proves it can fail against this client: `courier conform client`
// runs the driver (scripts/conform-driver.mjs) with each test-only fault of `src/faults.ts`
// (`COURIER_CLIENT_FAULT`), and every case listed for the fault must fail (or warn, for a SHOULD
// requirement's case, as the suite grades those without `--strict`). Whether the client
// without a fault passes the whole suite is `cargo xtask ci`'s step of its own.

import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { test } from "node:test";

import { CLIENT_FAULTS } from "../src/faults.js";
import { COURIER_BIN } from "./server.js";

/** One row of the suite's client fault table (`conformance/src/trace.rs`, `CLIENT_MUTANTS`). */
interface ClientMutant {
  name: string;
  breaks: string;
  caught_by: string[];
  clients: string[];
}

/**
 * The faults this client has and the cases (ID globs, `*` a wildcard) that must catch each, as
 * the suite lists them: one table for both clients, kept next to the cases it names.
 */
const CAUGHT_BY: Record<string, readonly string[]> = Object.fromEntries(
  (JSON.parse(execFileSync(COURIER_BIN, ["conform", "client", "--list-faults"], { encoding: "utf8" })) as ClientMutant[])
    .filter((m) => m.clients.includes("typescript"))
    .map((m) => [m.name, m.caught_by]),
);

const driver = fileURLToPath(new URL("../../scripts/conform-driver.mjs", import.meta.url));
const globRe = (glob: string): RegExp => new RegExp(`^${glob.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\/]/g, "\\$&")).join(".*")}$`);

interface Result {
  id: string;
  outcome: string;
  message: string;
}

/** Runs the listed cases against the driver with `fault` on; returns the report's results. */
async function runSuite(fault: string, only: readonly string[]): Promise<Result[]> {
  const report = join(mkdtempSync(join(tmpdir(), "courier-conform-")), "report.json");
  const args = ["conform", "client", "--time-scale", "2", "--report-json", report, ...only.flatMap((g) => ["--only", g]), "--", process.execPath, driver];
  await new Promise<void>((resolve, reject) => {
    // Exit 1 is the expected verdict (cases failed); anything else means the run itself failed.
    execFile(COURIER_BIN, args, { env: { ...process.env, COURIER_CLIENT_FAULT: fault }, maxBuffer: 1 << 26 }, (err, _out, stderr) =>
      err && err.code !== 1 ? reject(new Error(`courier conform client (${fault}) exited with ${String(err.code)}: ${stderr}`)) : resolve(),
    );
  });
  return (JSON.parse(readFileSync(report, "utf8")) as { results: Result[] }).results;
}

test("the suite's fault table lists exactly this client's faults", () => {
  assert.deepEqual(CLIENT_FAULTS.map((f) => f.name).sort(), Object.keys(CAUGHT_BY).sort());
});

for (const { name, requirement } of CLIENT_FAULTS) {
  const only = CAUGHT_BY[name] ?? [];
  test(`fault ${name} (${requirement}) is caught by ${only.join(", ")}`, { timeout: 120_000 }, async () => {
    const results = await runSuite(name, only);
    for (const glob of only) {
      const re = globRe(glob);
      const ran = results.filter((r) => re.test(r.id));
      assert.ok(ran.length > 0, `no case matches ${glob}`);
      assert.ok(
        ran.some((r) => r.outcome === "fail" || r.outcome === "warn"),
        `${name} went unnoticed by ${glob}: ${ran.map((r) => `${r.id} ${r.outcome}`).join("; ")}`,
      );
    }
  });
}
