import { Counter, Gauge, type Registry } from 'prom-client';
import type { CompatStats, TypedArrayPool } from './compat.js';
import { invalidRange, invalidType } from './errors.js';
import { MemoryPool } from './pool.js';
import type { PoolStats } from './stats.js';

/*
 * A pool's figures as Prometheus metrics, read from stats() when the registry is scraped (each
 * family's collect()). One family per name per registry, one series per pool (labels `pool` and
 * `backend`), so any number of pools share a registry. prom-client is needed only here: neither
 * `slabpool` nor `slabpool/compat` loads this file.
 */

/** Options of `registerPoolMetrics`. */
export interface PoolMetricsOptions {
  /** The `pool` label of every series of this pool: unique within the registry. */
  readonly name: string;
}

// Any element type: the metrics read only stats() and destroyed.
type AnyMemoryPool = MemoryPool<any>;
type AnyPool = AnyMemoryPool | TypedArrayPool;
type Kind = 'pool' | 'compat';
type Labels = Record<string, string | number>;
type Series = [labels: Labels, value: number];

interface Entry {
  readonly kind: Kind;
  readonly pool: AnyPool;
}

interface FamilySpec {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter';
  readonly labels: readonly string[];
  /** The series of one pool, from its stats() read at this scrape. */
  readonly series: (stats: never, labels: Labels) => Series[];
}

const POOL_LABELS = ['pool', 'backend'] as const;
const CLASS_LABELS = ['pool', 'backend', 'bytes'] as const;

function poolFigure(name: string, type: 'gauge' | 'counter', help: string, figure: keyof PoolStats): FamilySpec {
  return { name, help, type, labels: POOL_LABELS, series: (s: PoolStats, labels: Labels) => [[labels, s[figure] as number]] };
}

function compatFigure(name: string, type: 'gauge' | 'counter', help: string, read: (s: CompatStats) => number): FamilySpec {
  return { name, help, type, labels: POOL_LABELS, series: (s: CompatStats, labels: Labels) => [[labels, read(s)]] };
}

type ClassFigure = keyof CompatStats['classes'][number];

function classFigure(name: string, type: 'gauge' | 'counter', help: string, figure: ClassFigure): FamilySpec {
  return {
    name,
    help,
    type,
    labels: CLASS_LABELS,
    series: (s: CompatStats, labels: Labels) => s.classes.map((c): Series => [{ ...labels, bytes: c.bytes }, c[figure]]),
  };
}

/** Every MemoryPool family; README "Metrics (Prometheus)" lists them. */
const POOL_FAMILIES: readonly FamilySpec[] = [
  poolFigure('slabpool_capacity_blocks', 'gauge', 'Blocks in all slabs (stats().capacityBlocks).', 'capacityBlocks'),
  poolFigure('slabpool_in_use_blocks', 'gauge', 'Blocks handed out, a run of k counting k (stats().inUseBlocks).', 'inUseBlocks'),
  poolFigure('slabpool_free_blocks', 'gauge', 'capacity - in use (stats().freeBlocks).', 'freeBlocks'),
  poolFigure('slabpool_largest_free_run_blocks', 'gauge', 'Longest run of adjacent free blocks in one slab (stats().largestFreeRun).', 'largestFreeRun'),
  poolFigure('slabpool_fragmentation_percent', 'gauge', '100 * (1 - largestFreeRun / freeBlocks) (stats().fragmentation).', 'fragmentation'),
  poolFigure('slabpool_efficiency_percent', 'gauge', '100 * inUseBlocks / capacityBlocks (stats().efficiency).', 'efficiency'),
  poolFigure('slabpool_reserved_bytes', 'gauge', 'Bytes allocated for slabs (stats().reservedBytes).', 'reservedBytes'),
  poolFigure('slabpool_acquires_total', 'counter', 'Successful getBlock / getRun / lease calls (stats().acquires).', 'acquires'),
  poolFigure('slabpool_returns_total', 'counter', 'Successful returns (stats().returns).', 'returns'),
  poolFigure('slabpool_failures_total', 'counter', 'Gets that returned null (stats().failures).', 'failures'),
  poolFigure('slabpool_grows_total', 'counter', 'Slabs added by growth (stats().grows).', 'grows'),
  poolFigure('slabpool_trims_total', 'counter', 'Slabs given back by trim() (stats().trims).', 'trims'),
  poolFigure('slabpool_coalesces_total', 'counter', 'Coalesces, explicit and automatic (stats().coalesces).', 'coalesces'),
];

/** Every slabpool/compat family, whole-pool then per size class (label `bytes`). */
const COMPAT_FAMILIES: readonly FamilySpec[] = [
  compatFigure('slabpool_compat_live_bytes', 'gauge', 'Block bytes handed out now (stats().liveBytes).', (s) => s.liveBytes),
  compatFigure('slabpool_compat_reserved_bytes', 'gauge', 'Bytes the size classes hold (stats().reservedBytes).', (s) => s.reservedBytes),
  compatFigure('slabpool_compat_mallocs_total', 'counter', 'Successful mallocs of every kind (stats().mallocs).', (s) => s.mallocs),
  compatFigure('slabpool_compat_frees_total', 'counter', 'Successful frees of every kind (stats().frees).', (s) => s.frees),
  compatFigure('slabpool_compat_double_frees_total', 'counter', 'free() of an array already freed (stats().doubleFrees).', (s) => s.doubleFrees),
  compatFigure('slabpool_compat_foreign_frees_total', 'counter', 'free() of anything malloc did not return (stats().foreignFrees).', (s) => s.foreignFrees),
  compatFigure('slabpool_compat_arraybuffers_live', 'gauge', 'mallocArrayBuffer buffers handed out (stats().arrayBuffers.live).', (s) => s.arrayBuffers.live),
  compatFigure('slabpool_compat_arraybuffers_cached', 'gauge', 'mallocArrayBuffer buffers cached (stats().arrayBuffers.cached).', (s) => s.arrayBuffers.cached),
  compatFigure('slabpool_compat_arraybuffers_cached_bytes', 'gauge', 'Bytes of the cached buffers (stats().arrayBuffers.cachedBytes).', (s) => s.arrayBuffers.cachedBytes),
  classFigure('slabpool_compat_class_live_blocks', 'gauge', 'Blocks of a size class handed out (stats().classes[].liveBlocks).', 'liveBlocks'),
  classFigure('slabpool_compat_class_peak_live_blocks', 'gauge', 'Highest liveBlocks of a size class (stats().classes[].peakLiveBlocks).', 'peakLiveBlocks'),
  classFigure('slabpool_compat_class_capacity_blocks', 'gauge', 'Blocks in a size class (stats().classes[].capacityBlocks).', 'capacityBlocks'),
  classFigure('slabpool_compat_class_reserved_bytes', 'gauge', "Bytes of a size class's slabs (stats().classes[].reservedBytes).", 'reservedBytes'),
  classFigure('slabpool_compat_class_slabs', 'gauge', 'Slabs of a size class (stats().classes[].slabs).', 'slabs'),
  classFigure('slabpool_compat_class_mallocs_total', 'counter', 'Mallocs from a size class (stats().classes[].mallocs).', 'mallocs'),
  classFigure('slabpool_compat_class_frees_total', 'counter', 'Frees to a size class (stats().classes[].frees).', 'frees'),
  classFigure('slabpool_compat_class_trims_total', 'counter', 'Slabs a size class gave back (stats().classes[].trims).', 'trims'),
];

const FAMILIES: Record<Kind, readonly FamilySpec[]> = { pool: POOL_FAMILIES, compat: COMPAT_FAMILIES };

/** What slabpool keeps for one registry: its pools by name, and the families it registered there. */
class RegistryState {
  readonly pools = new Map<string, Entry>();
  readonly #families: Record<Kind, { name: string; metric: Gauge | Counter }[] | null> = { pool: null, compat: null };
  /** stats() of every live pool, read once per scrape: every family's collect() runs in one synchronous turn. */
  #snapshot: Map<string, { entry: Entry; stats: PoolStats | CompatStats }> | null = null;

  constructor(readonly registry: Registry) {}

  snapshot(): Map<string, { entry: Entry; stats: PoolStats | CompatStats }> {
    if (this.#snapshot) return this.#snapshot;
    const snap = new Map<string, { entry: Entry; stats: PoolStats | CompatStats }>();
    for (const [name, entry] of this.pools) {
      // A destroyed pool has no figures: its series go, and so does the pool, rather than the scrape failing.
      if (entry.kind === 'pool' && (entry.pool as AnyMemoryPool).destroyed) {
        this.remove(name);
        continue;
      }
      snap.set(name, { entry, stats: entry.pool.stats() });
    }
    this.#snapshot = snap;
    queueMicrotask(() => {
      this.#snapshot = null;
    });
    return snap;
  }

  /** Registers the families of `kind` if this registry does not hold them (first pool, or after registry.clear()). */
  ensureFamilies(kind: Kind): void {
    const state = this;
    let families = this.#families[kind];
    if (!families) {
      families = FAMILIES[kind].map((spec) => {
        const seriesNow = (): Series[] => {
          const out: Series[] = [];
          for (const [name, { entry, stats }] of state.snapshot()) {
            if (entry.kind === kind) out.push(...spec.series(stats as never, { pool: name, backend: stats.backend }));
          }
          return out;
        };
        const config = { name: spec.name, help: spec.help, labelNames: spec.labels, registers: [] };
        const metric = spec.type === 'gauge'
          ? new Gauge({
              ...config,
              collect(this: Gauge) {
                this.reset();
                for (const [labels, value] of seriesNow()) this.set(labels, value);
              },
            })
          : new Counter({
              ...config,
              collect(this: Counter) {
                this.reset();
                for (const [labels, value] of seriesNow()) this.inc(labels, value);
              },
            });
        return { name: spec.name, metric };
      });
      this.#families[kind] = families;
    }
    for (const family of families) {
      const held = this.registry.getSingleMetric(family.name);
      if (held === family.metric) continue;
      if (held !== undefined) {
        throw invalidRange('registry', `a registry without a metric named ${family.name}`, this.registry, 'another metric of that name is registered there');
      }
      this.registry.registerMetric(family.metric);
    }
  }

  remove(name: string): boolean {
    const entry = this.pools.get(name);
    if (!entry) return false;
    this.pools.delete(name);
    const families = this.#families[entry.kind];
    if (families && ![...this.pools.values()].some((e) => e.kind === entry.kind)) {
      // The last pool of its kind: leave the registry as it was before the first.
      for (const family of families) {
        if (this.registry.getSingleMetric(family.name) === family.metric) this.registry.removeSingleMetric(family.name);
      }
      this.#families[entry.kind] = null;
    }
    return true;
  }
}

const states = new WeakMap<object, RegistryState>();

function isRegistry(value: unknown): value is Registry {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return typeof r.registerMetric === 'function' && typeof r.getSingleMetric === 'function' && typeof r.removeSingleMetric === 'function';
}

function kindOf(pool: unknown): Kind | null {
  if (pool instanceof MemoryPool) return 'pool';
  if ((typeof pool === 'object' && pool !== null) || typeof pool === 'function') {
    const p = pool as Record<string, unknown>;
    if (typeof p.malloc === 'function' && typeof p.free === 'function' && typeof p.stats === 'function') return 'compat';
  }
  return null;
}

function validName(name: unknown, param: string): string {
  if (typeof name !== 'string') throw invalidType(param, 'non-empty string', name);
  if (name.length === 0) throw invalidRange(param, 'non-empty string', name);
  return name;
}

/**
 * Registers `pool`'s figures with a prom-client `registry`, read from `pool.stats()` at every
 * scrape. `pool` is a MemoryPool or a slabpool/compat pool (the module itself, or one from
 * createTypedArrayPool). Returns a function that unregisters it (as unregisterPoolMetrics does).
 * A MemoryPool destroyed later drops out of the metrics at the next scrape.
 */
export function registerPoolMetrics(registry: Registry, pool: AnyMemoryPool | TypedArrayPool, options: PoolMetricsOptions): () => boolean {
  if (!isRegistry(registry)) throw invalidType('registry', 'a prom-client Registry', registry);
  const kind = kindOf(pool);
  if (kind === null) throw invalidType('pool', 'a MemoryPool or a slabpool/compat pool', pool);
  if (typeof options !== 'object' || options === null) throw invalidType('options', 'an object with a name', options);
  const name = validName(options.name, 'options.name');
  if (kind === 'pool' && (pool as AnyMemoryPool).destroyed) {
    throw invalidRange('pool', 'a pool that is not destroyed', pool, 'it has no figures any more');
  }
  let state = states.get(registry);
  if (!state) {
    state = new RegistryState(registry);
    states.set(registry, state);
  }
  if (state.pools.has(name)) {
    throw invalidRange('options.name', 'a pool name not yet registered with this registry', name, 'another pool has that name there');
  }
  for (const [other, entry] of state.pools) {
    if (entry.pool === pool) throw invalidRange('pool', 'a pool not yet registered with this registry', pool, `it is registered as '${other}'`);
  }
  state.pools.set(name, { kind, pool });
  try {
    state.ensureFamilies(kind);
  } catch (err) {
    state.pools.delete(name);
    throw err;
  }
  const registered = state;
  return () => registered.remove(name);
}

/**
 * Removes the pool registered as `name` from `registry`'s metrics; the families go with the last
 * pool of their kind. Returns whether such a pool was registered.
 */
export function unregisterPoolMetrics(registry: Registry, name: string): boolean {
  if (!isRegistry(registry)) throw invalidType('registry', 'a prom-client Registry', registry);
  validName(name, 'name');
  return states.get(registry)?.remove(name) ?? false;
}
