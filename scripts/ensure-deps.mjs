// Installs the project's dependencies from the lockfile when they are missing,
// so `npm start` and `npm test` work as the first command on a fresh clone.
import { existsSync } from "node:fs";
import { execSync } from "node:child_process";

if (!existsSync(new URL("../node_modules/.bin/bun", import.meta.url))) {
  console.log("node_modules missing: running npm install (one time)");
  execSync("npm install --no-audit --no-fund", { stdio: "inherit", cwd: new URL("..", import.meta.url) });
}
