import { Session } from 'node:inspector/promises';
import { spawnSync } from 'node:child_process';
const session = new Session();
session.connect();
await session.post('HeapProfiler.enable');
await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
process.argv = [process.argv[0], 'examples/demo.mjs', '--iterations', '20000', '--json', '--backend', 'js'];
await import('../examples/demo.mjs');
await new Promise((r) => setTimeout(r, 3000));
const { profile } = await session.post('HeapProfiler.stopSampling');
const totals = {};
(function walk(n, path) {
  const name = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber + 1}`;
  if (n.selfSize) totals[name] = (totals[name] || 0) + n.selfSize;
  for (const c of n.children) walk(c, path);
})(profile.head);
console.error(Object.entries(totals).sort((a, b) => b[1] - a[1]).slice(0, 10).map(([k, v]) => `${(v / 2 ** 20).toFixed(1)} MB  ${k}`).join('\n'));
