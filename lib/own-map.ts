import type { PoolArray, PoolArrayConstructor } from './options.js';

/*
 * The block and run views a MemoryPool hands out, made on hidden classes (V8 maps) of their own.
 *
 * Adding any property to an object made by `new Float64Array(...)` gives V8's built-in
 * Float64Array map a transition, after which that map is no longer stable: every optimized
 * function that embedded a typed array of that type as a constant (a module-level
 * `const x = new Float64Array(n)` used in a hot loop, the common shape of numeric code) is thrown
 * away and re-optimized with map checks. Measured on Node 20: a dot product plus an axpy over two
 * such Float64Array(1000) ran 1.8x slower for the rest of the process after one getBlock(), in
 * code that never touches the pool. A pool marks its views (views.ts), so each is made by a
 * subclass, whose instances get a map of their own (V8 caches a subclass's initial map:
 * construction costs what the built-in's does), and then given the built-in prototype back, so
 * it is indistinguishable from a plain one: same constructor, prototype, instanceof,
 * util.inspect and deepStrictEqual. Resetting the prototype is a runtime call (~50-110 ns), paid
 * once per view made, never on getBlock/returnBlock. test/protector.test.ts holds the built-in
 * maps stable.
 */

// One subclass per element type, each with its own initial map.
const OWN_VIEWS = new Map<Function, new (buffer: ArrayBuffer, byteOffset: number, length: number) => object>([
  [Int8Array, class extends Int8Array {}],
  [Uint8Array, class extends Uint8Array {}],
  [Uint8ClampedArray, class extends Uint8ClampedArray {}],
  [Int16Array, class extends Int16Array {}],
  [Uint16Array, class extends Uint16Array {}],
  [Int32Array, class extends Int32Array {}],
  [Uint32Array, class extends Uint32Array {}],
  [Float32Array, class extends Float32Array {}],
  [Float64Array, class extends Float64Array {}],
  [BigInt64Array, class extends BigInt64Array {}],
  [BigUint64Array, class extends BigUint64Array {}],
]);

/** A `type` view of `length` elements at `byteOffset` in `buffer`, on a map of its own (see above). */
export function ownView<T extends PoolArray>(type: PoolArrayConstructor<T>, buffer: ArrayBuffer, byteOffset: number, length: number): T {
  const Own = OWN_VIEWS.get(type);
  if (Own === undefined) throw new TypeError(`slabpool: no own-map view class for ${type.name}`);
  const view = new Own(buffer, byteOffset, length);
  Object.setPrototypeOf(view, type.prototype);
  return view as T;
}
