// Copies the browser builds of the pinned npm packages into static/vendor/ (git-ignored), where
// Flask serves them at /assets/vendor/. Run by `npm ci` (postinstall); no bundler, no CDN.
import { copyFileSync, mkdirSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "node_modules");
const out = join(here, "static", "vendor");

// [package file, name served] — ES modules for the scripts, the minified stylesheet for WeUI.
const FILES = [
  ["weui/dist/style/weui.min.css", "weui.min.css"],
  ["weui/LICENSE.txt", "LICENSE.weui.txt"],
  ["hls.js/dist/hls.light.min.mjs", "hls.mjs"],
  ["hls.js/LICENSE", "LICENSE.hls.js.txt"],
  ["echarts/dist/echarts.esm.min.mjs", "echarts.mjs"],
  ["echarts/LICENSE", "LICENSE.echarts.txt"],
  ["socket.io-client/dist/socket.io.esm.min.js", "socket.io.mjs"],
  ["socket.io-client/LICENSE", "LICENSE.socket.io-client.txt"],
];

mkdirSync(out, { recursive: true });
let missing = 0;
for (const [from, to] of FILES) {
  const source = join(modules, from);
  if (!existsSync(source)) {
    // A licence file renamed upstream must not break the install; a script missing must.
    if (to.startsWith("LICENSE")) continue;
    console.error(`vendor: missing ${from}`);
    missing += 1;
    continue;
  }
  copyFileSync(source, join(out, to));
}
if (missing) process.exit(1);
console.log(`vendor: ${FILES.length - missing} files in ${out}`);
