// Generates the Courier reference with the real `courier` binary into a
// fresh temporary directory (what a user gets from `courier docs --out`).
// `cargo xtask ci` builds courier and passes it as $COURIER_BIN.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');

export function generateDocs() {
  const target = process.env.CARGO_TARGET_DIR ? path.resolve(repoRoot, process.env.CARGO_TARGET_DIR) : path.join(repoRoot, 'target');
  const exe = process.env.COURIER_BIN || path.join(target, 'debug', process.platform === 'win32' ? 'courier.exe' : 'courier');
  if (!fs.existsSync(exe)) {
    throw new Error(`${exe} not found: run \`cargo build -p courier-cli\` first (cargo xtask ci does)`);
  }
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'courier-docs-'));
  const r = spawnSync(exe, ['docs', '--out', out], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) {
    throw new Error(`courier docs failed (status ${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
  return out;
}

/// Counts checks and prints the closing line test runners look for.
export class Tally {
  constructor(name) { this.name = name; this.passed = 0; this.failed = 0; }
  check(ok, what) {
    if (ok) { this.passed++; } else { this.failed++; console.error(`FAIL ${this.name}: ${what}`); }
  }
  finish() {
    console.log(`${this.name}: ${this.passed} passed, ${this.failed} failed`);
    process.exitCode = this.failed === 0 && this.passed > 0 ? 0 : 1;
  }
}
