// Builds the dashboard into crates/pingan-query/assets (committed, embedded by the Rust build).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';

const out = new URL('../crates/pingan-query/assets/', import.meta.url).pathname;
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: 'src/main.js' },
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome100', 'firefox100', 'safari15'],
  outdir: out,
  legalComments: 'eof',
  logLevel: 'info',
});
copyFileSync('index.html', out + 'index.html');
// The login runs before the bundle and loads it; kept out of it so it needs no build step.
copyFileSync('src/login.js', out + 'login.js');
