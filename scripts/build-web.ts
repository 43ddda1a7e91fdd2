/**
 * Builds what browsers load, with esbuild:
 *  - the inbox (/) and admin (/admin) pages into dist/web (HTML + content-hashed JS/CSS in assets/),
 *  - the client SDK as one minified ESM file, dist/client/skypush.browser.js, and prints its size.
 * Run: node --import tsx scripts/build-web.ts   (part of `npm run build`)
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, type Metafile } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const UI = join(ROOT, 'src/web/ui');
export const DEFAULT_WEB_DIR = join(ROOT, 'dist/web');
export const SDK_BUNDLE = join(ROOT, 'dist/client/skypush.browser.js');
const PAGES = { index: 'inbox', admin: 'admin' } as const;
const TARGET = ['es2022', 'chrome100', 'firefox100', 'safari15.4'];

export interface Size {
  file: string;
  bytes: number;
  gzip: number;
}

async function sizeOf(file: string): Promise<Size> {
  const body = await readFile(file);
  return { file: relative(ROOT, file), bytes: body.length, gzip: gzipSync(body, { level: 9 }).length };
}

/** The output file esbuild produced for `entry` (a path relative to the repository root). */
function outputFor(meta: Metafile, entry: string): string {
  for (const [out, info] of Object.entries(meta.outputs)) if (info.entryPoint === entry) return out;
  throw new Error(`esbuild produced nothing for ${entry}`);
}

/** Builds the two pages into `outDir` (emptied first); returns the sizes of what a page load fetches. */
export async function buildWebPages(outDir = DEFAULT_WEB_DIR): Promise<Size[]> {
  await rm(outDir, { recursive: true, force: true });
  const assets = join(outDir, 'assets');
  const r = await build({
    absWorkingDir: ROOT,
    entryPoints: [...Object.values(PAGES).map((p) => `src/web/ui/${p}.ts`), 'src/web/ui/styles.css'],
    outdir: assets,
    entryNames: '[name]-[hash]',
    chunkNames: 'chunk-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    minify: true,
    target: TARGET,
    metafile: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  const style = `/assets/${basename(outputFor(r.metafile, 'src/web/ui/styles.css'))}`;
  for (const [html, entry] of Object.entries(PAGES)) {
    const script = `/assets/${basename(outputFor(r.metafile, `src/web/ui/${entry}.ts`))}`;
    const template = await readFile(join(UI, `${html}.html`), 'utf8');
    await writeFile(
      join(outDir, `${html}.html`),
      template.replace('%STYLE%', style).replace('%SCRIPT%', script),
    );
  }
  return Promise.all(Object.keys(r.metafile.outputs).map((f) => sizeOf(join(ROOT, f))));
}

/** The SDK as a single browser ESM file; returns its size (minified and gzipped). */
export async function buildSdkBundle(outFile = SDK_BUNDLE): Promise<Size> {
  await mkdir(dirname(outFile), { recursive: true });
  await build({
    absWorkingDir: ROOT,
    entryPoints: ['client/index.ts'],
    outfile: outFile,
    bundle: true,
    format: 'esm',
    minify: true,
    target: TARGET,
    legalComments: 'none',
    logLevel: 'warning',
  });
  return sizeOf(outFile);
}

const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`;

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const pages = await buildWebPages();
  const sdk = await buildSdkBundle();
  for (const s of [...pages, sdk])
    console.log(`${s.file.padEnd(48)} ${kb(s.bytes).padStart(9)} min  ${kb(s.gzip).padStart(8)} gzip`);
}
