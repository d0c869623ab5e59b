// Builds the dashboard into crates/ravsock/assets/dash, which ravsock embeds (and git keeps,
// so that `cargo build` needs no Node.js). `node build.mjs --check` builds to memory and fails
// when the committed files differ from what the sources and the locked packages give.
import * as esbuild from 'esbuild';
import { readFile, writeFile, mkdir } from 'node:fs/promises';

const out = new URL('../crates/ravsock/assets/dash/', import.meta.url);
const check = process.argv.includes('--check');

const bundle = await esbuild.build({
  entryPoints: [new URL('./src/app.js', import.meta.url).pathname],
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2020',
  legalComments: 'eof',
  write: false,
  logLevel: 'warning',
});
const files = {
  'app.js': bundle.outputFiles[0].text,
  'app.css': await readFile(new URL('./src/app.css', import.meta.url), 'utf8'),
  'index.html': await readFile(new URL('./src/index.html', import.meta.url), 'utf8'),
  'login.html': await readFile(new URL('./src/login.html', import.meta.url), 'utf8'),
};

let stale = [];
if (!check) await mkdir(out, { recursive: true });
for (const [name, text] of Object.entries(files)) {
  const target = new URL(name, out);
  if (check) {
    const committed = await readFile(target, 'utf8').catch(() => null);
    if (committed !== text) stale.push(name);
  } else {
    await writeFile(target, text);
    console.log(`built ${name} (${text.length} bytes)`);
  }
}
if (stale.length) {
  console.error(`crates/ravsock/assets/dash is not what dash/ builds: ${stale.join(', ')} differ; run \`npm run build\` in dash/`);
  process.exit(1);
}
