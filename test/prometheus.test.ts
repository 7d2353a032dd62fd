import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createTypedArrayPool, type CompatStats } from '../lib/compat.js';
import type { MemoryPool } from '../lib/index.js';
import { registerPoolMetrics, unregisterPoolMetrics } from '../lib/prometheus.js';
import type { PoolStats } from '../lib/stats.js';
import { BACKENDS, makePool, thrownBy } from './helpers.js';

const root = path.resolve(__dirname, '..');

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition: every sample line, and the TYPE of every family. */
function parse(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP')) continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    expect(m, `unparsable exposition line: ${line}`).not.toBeNull();
    const labels: Record<string, string> = {};
    for (const pair of (m![2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = pair[2]!;
    samples.push({ name: m![1]!, labels, value: Number(m![3]) });
  }
  return { samples, types };
}

async function scrape(registry: Registry): Promise<{ samples: Sample[]; types: Map<string, string> }> {
  return parse(await registry.metrics());
}

/** The one sample of `name` with exactly these labels. */
function valueOf(samples: Sample[], name: string, labels: Record<string, string>): number {
  const found = samples.filter((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels));
  expect(found, `${name}${JSON.stringify(labels)}`).toHaveLength(1);
  return found[0]!.value;
}

const POOL_FIGURES: [string, keyof PoolStats, 'gauge' | 'counter'][] = [
  ['slabpool_capacity_blocks', 'capacityBlocks', 'gauge'],
  ['slabpool_in_use_blocks', 'inUseBlocks', 'gauge'],
  ['slabpool_free_blocks', 'freeBlocks', 'gauge'],
  ['slabpool_largest_free_run_blocks', 'largestFreeRun', 'gauge'],
  ['slabpool_fragmentation_percent', 'fragmentation', 'gauge'],
  ['slabpool_efficiency_percent', 'efficiency', 'gauge'],
  ['slabpool_reserved_bytes', 'reservedBytes', 'gauge'],
  ['slabpool_acquires_total', 'acquires', 'counter'],
  ['slabpool_returns_total', 'returns', 'counter'],
  ['slabpool_failures_total', 'failures', 'counter'],
  ['slabpool_grows_total', 'grows', 'counter'],
  ['slabpool_trims_total', 'trims', 'counter'],
  ['slabpool_coalesces_total', 'coalesces', 'counter'],
];

const COMPAT_FIGURES: [string, (s: CompatStats) => number][] = [
  ['slabpool_compat_live_bytes', (s) => s.liveBytes],
  ['slabpool_compat_reserved_bytes', (s) => s.reservedBytes],
  ['slabpool_compat_mallocs_total', (s) => s.mallocs],
  ['slabpool_compat_frees_total', (s) => s.frees],
  ['slabpool_compat_double_frees_total', (s) => s.doubleFrees],
  ['slabpool_compat_foreign_frees_total', (s) => s.foreignFrees],
  ['slabpool_compat_arraybuffers_live', (s) => s.arrayBuffers.live],
  ['slabpool_compat_arraybuffers_cached', (s) => s.arrayBuffers.cached],
  ['slabpool_compat_arraybuffers_cached_bytes', (s) => s.arrayBuffers.cachedBytes],
];

const CLASS_FIGURES: [string, keyof CompatStats['classes'][number]][] = [
  ['slabpool_compat_class_live_blocks', 'liveBlocks'],
  ['slabpool_compat_class_peak_live_blocks', 'peakLiveBlocks'],
  ['slabpool_compat_class_capacity_blocks', 'capacityBlocks'],
  ['slabpool_compat_class_reserved_bytes', 'reservedBytes'],
  ['slabpool_compat_class_slabs', 'slabs'],
  ['slabpool_compat_class_mallocs_total', 'mallocs'],
  ['slabpool_compat_class_frees_total', 'frees'],
  ['slabpool_compat_class_trims_total', 'trims'],
];

/** Every MemoryPool figure of `pool` in the scrape equals its stats() now. */
function expectPoolFigures(samples: Sample[], name: string, pool: MemoryPool): void {
  const stats = pool.stats();
  for (const [metric, figure] of POOL_FIGURES) {
    expect(valueOf(samples, metric, { pool: name, backend: pool.backend }), metric).toBe(stats[figure]);
  }
}

/** Makes a pool's every counter and gauge move: acquires, returns, a failure, growth, a coalesce, a trim. */
function exercise(pool: MemoryPool): Float64Array[] {
  const held: Float64Array[] = [];
  for (let i = 0; i < 40; i++) held.push(pool.getBlock() as Float64Array);
  const run = pool.getRun(4);
  if (run) pool.returnBlock(run);
  for (let i = 0; i < 40; i += 2) pool.returnBlock(held[i]!);
  pool.coalesce();
  expect(pool.getRun(16)).toBeNull();
  return held.filter((_, i) => i % 2 === 1);
}

describe.each(BACKENDS)('slabpool/prometheus on the %s backend', (backend) => {
  it('exposes every MemoryPool figure, equal to stats() at each scrape', async () => {
    const registry = new Registry();
    const pool = makePool(backend, { blockSize: 8, numBlocks: 16, grow: true, maxBlocks: 48 });
    registerPoolMetrics(registry, pool, { name: 'vectors' });
    let { samples, types } = await scrape(registry);
    expectPoolFigures(samples, 'vectors', pool);
    for (const [metric, , type] of POOL_FIGURES) expect(types.get(metric), metric).toBe(type);

    const held = exercise(pool);
    ({ samples } = await scrape(registry));
    expectPoolFigures(samples, 'vectors', pool);
    const stats = pool.stats();
    expect(stats.grows).toBeGreaterThan(0);
    expect(stats.failures).toBeGreaterThan(0);
    expect(stats.coalesces).toBeGreaterThan(0);

    for (const b of held) pool.returnBlock(b);
    pool.trim();
    expect(pool.stats().trims).toBeGreaterThan(0);
    ({ samples } = await scrape(registry));
    expectPoolFigures(samples, 'vectors', pool);
    pool.destroy();
  });

  it("exposes compat's whole-pool and per-class figures, equal to stats()", async () => {
    const registry = new Registry();
    const compat = createTypedArrayPool({ backend });
    registerPoolMetrics(registry, compat, { name: 'arrays' });
    const kept = [compat.mallocDouble(100), compat.mallocUint8(3), compat.mallocBuffer(5000), compat.mallocArrayBuffer(64)];
    compat.free(compat.mallocFloat32(7));
    compat.free(kept[0]);
    compat.free(kept[0]);
    const { samples } = await scrape(registry);
    const stats = compat.stats();
    expect(stats.classes.length).toBeGreaterThanOrEqual(3);
    expect(stats.doubleFrees).toBe(1);
    for (const [metric, read] of COMPAT_FIGURES) expect(valueOf(samples, metric, { pool: 'arrays', backend }), metric).toBe(read(stats));
    for (const [metric, figure] of CLASS_FIGURES) {
      expect(samples.filter((s) => s.name === metric), metric).toHaveLength(stats.classes.length);
      for (const c of stats.classes) expect(valueOf(samples, metric, { pool: 'arrays', backend, bytes: String(c.bytes) }), metric).toBe(c[figure]);
    }
    // Only compat's families: a registry without MemoryPools has none of theirs.
    expect(samples.some((s) => s.name === 'slabpool_capacity_blocks')).toBe(false);
  });

  it('drops a destroyed pool at the next scrape instead of throwing, and keeps the others', async () => {
    const registry = new Registry();
    const a = makePool(backend, { blockSize: 4, numBlocks: 8 });
    const b = makePool(backend, { blockSize: 4, numBlocks: 8 });
    registerPoolMetrics(registry, a, { name: 'a' });
    registerPoolMetrics(registry, b, { name: 'b' });
    a.getBlock();
    a.destroy();
    const { samples } = await scrape(registry);
    expect(samples.some((s) => s.labels.pool === 'a')).toBe(false);
    expectPoolFigures(samples, 'b', b);
    // Its name is free again.
    const c = makePool(backend, { blockSize: 4, numBlocks: 8 });
    registerPoolMetrics(registry, c, { name: 'a' });
    expectPoolFigures((await scrape(registry)).samples, 'a', c);
    b.destroy();
    c.destroy();
    expect((await scrape(registry)).samples).toEqual([]);
  });
});

describe('slabpool/prometheus with several pools', () => {
  it('shares one family per name across pools, backends and kinds on one registry, a series each', async () => {
    const registry = new Registry();
    const pools = BACKENDS.flatMap((backend) => [0, 1].map((i) => ({ name: `${backend}-${i}`, pool: makePool(backend, { blockSize: 2 + i, numBlocks: 8 * (i + 1) }) })));
    for (const { name, pool } of pools) registerPoolMetrics(registry, pool, { name });
    const compat = createTypedArrayPool();
    registerPoolMetrics(registry, compat, { name: 'compat' });
    pools[0]!.pool.getBlock();
    compat.mallocInt32(10);
    const text = await registry.metrics();
    const { samples } = parse(text);
    for (const [metric] of POOL_FIGURES) {
      expect(text.match(new RegExp(`^# TYPE ${metric} `, 'gm')), metric).toHaveLength(1);
      expect(samples.filter((s) => s.name === metric)).toHaveLength(pools.length);
    }
    for (const { name, pool } of pools) expectPoolFigures(samples, name, pool);
    expect(valueOf(samples, 'slabpool_compat_mallocs_total', { pool: 'compat', backend: compat.stats().backend })).toBe(1);
    for (const { pool } of pools) pool.destroy();
  });

  it('registers with other metrics of the registry, and on several registries at once', async () => {
    const one = new Registry();
    const two = new Registry();
    const pool = makePool('js', { blockSize: 2, numBlocks: 4 });
    registerPoolMetrics(one, pool, { name: 'p' });
    registerPoolMetrics(two, pool, { name: 'q' });
    pool.getBlock();
    expect(valueOf((await scrape(one)).samples, 'slabpool_in_use_blocks', { pool: 'p', backend: 'js' })).toBe(1);
    expect(valueOf((await scrape(two)).samples, 'slabpool_in_use_blocks', { pool: 'q', backend: 'js' })).toBe(1);
    pool.destroy();
  });

  it('unregisters a pool by the returned function or by name; the families go with the last pool', async () => {
    const registry = new Registry();
    const a = makePool('js', { blockSize: 2, numBlocks: 4 });
    const b = makePool('js', { blockSize: 2, numBlocks: 4 });
    const compat = createTypedArrayPool({ backend: 'js' });
    const offA = registerPoolMetrics(registry, a, { name: 'a' });
    registerPoolMetrics(registry, b, { name: 'b' });
    registerPoolMetrics(registry, compat, { name: 'c' });
    expect(offA()).toBe(true);
    expect(offA()).toBe(false);
    let { samples } = await scrape(registry);
    expect(samples.some((s) => s.labels.pool === 'a')).toBe(false);
    expectPoolFigures(samples, 'b', b);
    expect(unregisterPoolMetrics(registry, 'b')).toBe(true);
    expect(registry.getSingleMetric('slabpool_capacity_blocks')).toBeUndefined();
    expect(registry.getSingleMetric('slabpool_compat_live_bytes')).toBeDefined();
    expect(unregisterPoolMetrics(registry, 'c')).toBe(true);
    expect(unregisterPoolMetrics(registry, 'nobody')).toBe(false);
    expect(registry.getMetricsAsArray()).toEqual([]);
    // Registering again after everything went, or after registry.clear(), works.
    registerPoolMetrics(registry, a, { name: 'a' });
    registry.clear();
    registerPoolMetrics(registry, b, { name: 'b' });
    ({ samples } = await scrape(registry));
    expectPoolFigures(samples, 'a', a);
    expectPoolFigures(samples, 'b', b);
    a.destroy();
    b.destroy();
  });
});

describe('slabpool/prometheus rejects bad input', () => {
  const cases: [string, () => unknown, 'TypeError' | 'RangeError', RegExp][] = [];
  const registry = new Registry();
  const pool = makePool('js', { blockSize: 2, numBlocks: 4 });
  registerPoolMetrics(registry, pool, { name: 'taken' });
  const destroyedPool = makePool('js', { blockSize: 2, numBlocks: 4 });
  destroyedPool.destroy();
  const fresh = () => makePool('js', { blockSize: 2, numBlocks: 4 });
  cases.push(
    ['a non-registry', () => registerPoolMetrics({} as Registry, fresh(), { name: 'x' }), 'TypeError', /^Expected a prom-client Registry for registry but received an instance of Object$/],
    ['a missing registry', () => registerPoolMetrics(undefined as unknown as Registry, fresh(), { name: 'x' }), 'TypeError', /^Expected a prom-client Registry for registry but received undefined$/],
    ['a non-pool', () => registerPoolMetrics(registry, { stats() {} } as never, { name: 'x' }), 'TypeError', /^Expected a MemoryPool or a slabpool\/compat pool for pool but received an instance of Object$/],
    ['missing options', () => registerPoolMetrics(registry, fresh(), undefined as never), 'TypeError', /^Expected an object with a name for options but received undefined$/],
    ['a missing name', () => registerPoolMetrics(registry, fresh(), {} as never), 'TypeError', /^Expected non-empty string for options.name but received undefined$/],
    ['an empty name', () => registerPoolMetrics(registry, fresh(), { name: '' }), 'RangeError', /^Expected non-empty string for options.name but received '' of type string$/],
    ['a duplicate name', () => registerPoolMetrics(registry, fresh(), { name: 'taken' }), 'RangeError', /^Expected a pool name not yet registered with this registry for options.name but received 'taken' of type string \(another pool has that name there\)$/],
    ['the same pool twice', () => registerPoolMetrics(registry, pool, { name: 'again' }), 'RangeError', /^Expected a pool not yet registered with this registry for pool but received an instance of MemoryPool \(it is registered as 'taken'\)$/],
    ['a destroyed pool', () => registerPoolMetrics(registry, destroyedPool, { name: 'gone' }), 'RangeError', /^Expected a pool that is not destroyed for pool but received an instance of MemoryPool/],
    ['a non-string name to unregister', () => unregisterPoolMetrics(registry, 3 as never), 'TypeError', /^Expected non-empty string for name but received 3 of type number$/],
    ['a non-registry to unregister', () => unregisterPoolMetrics(null as never, 'taken'), 'TypeError', /^Expected a prom-client Registry for registry but received null$/],
  );
  it.each(cases)('%s', (_, fn, name, message) => {
    const err = thrownBy(fn);
    expect({ name: err.name, code: err.code }).toEqual({ name, code: 'ERR_SLABPOOL_INVALID_ARG' });
    expect(err.message).toMatch(message);
  });

  it('leaves the registry as it was after a rejected call', async () => {
    expect(registry.getMetricsAsArray().map((m) => (m as unknown as { name: string }).name)).toContain('slabpool_capacity_blocks');
    const { samples } = await scrape(registry);
    expect(new Set(samples.map((s) => s.labels.pool))).toEqual(new Set(['taken']));
  });

  it('refuses a registry where another metric holds one of its names', () => {
    const other = new Registry();
    other.registerMetric(new (require('prom-client').Gauge)({ name: 'slabpool_free_blocks', help: 'not ours', registers: [] }));
    const err = thrownBy(() => registerPoolMetrics(other, fresh(), { name: 'x' }));
    expect({ name: err.name, code: err.code }).toEqual({ name: 'RangeError', code: 'ERR_SLABPOOL_INVALID_ARG' });
    expect(err.message).toMatch(/^Expected a registry without a metric named slabpool_free_blocks for registry/);
  });
});

describe('prom-client stays optional', () => {
  const node = (code: string, type: 'commonjs' | 'module' = 'commonjs'): string =>
    execFileSync(process.execPath, ['--input-type', type, '-e', code], { cwd: root, encoding: 'utf8' }).trim();

  it('loading slabpool or slabpool/compat (require or import) loads no prom-client', () => {
    const cjs = node(`require('slabpool'); require('slabpool/compat'); console.log(Object.keys(require.cache).filter((f) => f.includes('prom-client')).length)`);
    expect(cjs).toBe('0');
    const esm = node(
      `import 'slabpool'; import 'slabpool/compat'; import { createRequire } from 'node:module'; const r = createRequire(import.meta.url); console.log(Object.keys(r.cache).filter((f) => f.includes('prom-client')).length)`,
      'module',
    );
    expect(esm).toBe('0');
  });

  it('declares prom-client an optional peer dependency', () => {
    const pkg = require(path.join(root, 'package.json'));
    expect(pkg.peerDependencies['prom-client']).toMatch(/^\^15/);
    expect(pkg.peerDependenciesMeta['prom-client']).toEqual({ optional: true });
    expect(pkg.dependencies['prom-client']).toBeUndefined();
  });

  it('slabpool/prometheus loads from both module systems as one instance', () => {
    const out = node(
      `import { registerPoolMetrics } from 'slabpool/prometheus'; import { createRequire } from 'node:module'; const r = createRequire(import.meta.url); console.log(r('slabpool/prometheus').registerPoolMetrics === registerPoolMetrics)`,
      'module',
    );
    expect(out).toBe('true');
  });
});
