// Gzipped size of each built chunk, and of the buyer's path (list → event → checkout → ticket):
// the entry and its static imports, plus the booking page's chunk and everything it imports,
// found through Vite's manifest. Fails above 200 kB. Then the admin chunks' total.
import { readFileSync, readdirSync } from "node:fs";
import { gzipSync } from "node:zlib";

const kb = (n) => `${(n / 1024).toFixed(1)} kB`;
const size = (f) => gzipSync(readFileSync(`dist/${f}`), { level: 9 }).length;
for (const f of readdirSync("dist/assets").filter((f) => f.endsWith(".js")).sort())
  console.log(`${kb(size(`assets/${f}`)).padStart(10)}  ${f}`);

const manifest = JSON.parse(readFileSync("dist/.vite/manifest.json", "utf8"));
const buyer = new Set();
const add = (key, dynamic) => {
  const chunk = manifest[key];
  if (!chunk || buyer.has(chunk.file)) return;
  buyer.add(chunk.file);
  for (const k of chunk.imports ?? []) add(k, dynamic);
  if (dynamic) for (const k of chunk.dynamicImports ?? []) add(k, dynamic);
};
add("index.html", false);
add("src/pages/BookingPage.tsx", true);
const total = [...buyer].reduce((n, f) => n + size(f), 0);
console.log(`buyer path: ${kb(total)} gzipped JavaScript (${[...buyer].join(", ")}); limit 200 kB`);
// The organiser's pages (and what only they load, such as the door's QR decoder) are chunks of
// their own, fetched only when an admin page opens.
const admin = new Set();
for (const [key, chunk] of Object.entries(manifest)) {
  if (!key.startsWith("src/admin/")) continue;
  for (const f of [chunk.file, ...[...(chunk.imports ?? []), ...(chunk.dynamicImports ?? [])].map((k) => manifest[k]?.file)]) if (f && !buyer.has(f)) admin.add(f);
}
const adminTotal = [...admin].reduce((n, f) => n + size(f), 0);
console.log(`admin chunks: ${kb(adminTotal)} gzipped JavaScript in all (${[...admin].sort().join(", ")}), loaded only on admin pages`);
if (total > 200 * 1024) {
  console.error("the buyer path is over 200 kB");
  process.exit(1);
}
