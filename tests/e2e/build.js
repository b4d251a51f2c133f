// Bundles the e2e app (app/main.jsx + the stock stream-chat-react CSS) with esbuild into
// dist/, next to a copy of app/index.html. Run by the suite before it starts (and by
// `npm run build`); dist/ is not committed.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const DIST = path.join(HERE, 'dist');

export async function buildApp() {
  rmSync(DIST, { recursive: true, force: true });
  mkdirSync(DIST, { recursive: true });
  await build({
    entryPoints: [path.join(HERE, 'app', 'main.jsx')],
    outdir: DIST,
    bundle: true,
    format: 'esm',
    jsx: 'automatic',
    target: ['chrome120'],
    minify: false,
    sourcemap: true,
    loader: { '.svg': 'file', '.png': 'file', '.woff': 'file', '.woff2': 'file', '.ttf': 'file' },
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'warning',
  });
  copyFileSync(path.join(HERE, 'app', 'index.html'), path.join(DIST, 'index.html'));
  return DIST;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildApp();
  console.log(`built ${DIST}`);
}
