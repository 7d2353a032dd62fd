// Builds examples/addon/build/Release/interop_sum.node with the package's own node-gyp (a
// devDependency) against the headers installed beside this node, so nothing is downloaded:
//   node examples/addon/build.mjs
// Exits 1, with node-gyp's output, when the build fails.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const { localNodeDir } = require('../../scripts/source-hash.js');

export const addonDir = path.dirname(fileURLToPath(import.meta.url));
export const addonFile = path.join(addonDir, 'build', 'Release', 'interop_sum.node');

/** Runs node-gyp rebuild; { ok, output }. */
export function buildAddon({ quiet = false } = {}) {
  const nodedir = process.env.npm_config_nodedir || localNodeDir();
  if (!nodedir) return { ok: false, output: `no Node headers beside ${process.execPath} (include/node/node_api.h); set npm_config_nodedir` };
  const args = [require.resolve('node-gyp/bin/node-gyp.js'), 'rebuild', `--nodedir=${nodedir}`];
  const result = spawnSync(process.execPath, args, { cwd: addonDir, stdio: quiet ? 'pipe' : 'inherit', encoding: 'utf8' });
  return { ok: result.status === 0, output: `${result.stdout ?? ''}${result.stderr ?? ''}${result.error ? String(result.error) : ''}` };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { ok } = buildAddon();
  if (!ok) process.exit(1);
  console.log(`built ${path.relative(process.cwd(), addonFile)}`);
}
