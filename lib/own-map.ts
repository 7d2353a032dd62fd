import type { PoolArray, PoolArrayConstructor } from './options.js';

/*
 * The views slabpool marks (a MemoryPool's block and run views, compat's cached views), made on
 * hidden classes (V8 maps) of their own.
 *
 * Adding any property to an object made by `new Float64Array(...)` gives V8's built-in
 * Float64Array map a transition, after which that map is no longer stable: every optimized
 * function that embedded a typed array of that type as a constant (a module-level
 * `const x = new Float64Array(n)` used in a hot loop, the common shape of numeric code) is thrown
 * away and re-optimized with map checks. Measured on Node 20: a dot product plus an axpy over two
 * such Float64Array(1000) ran 1.8x slower for the rest of the process after one getBlock(), in
 * code that never touches the pool. So each view to be marked is made by a subclass, whose
 * instances get a map of their own (V8 caches a subclass's initial map: construction costs what
 * the built-in's does), and then given the built-in prototype back, so it is indistinguishable
 * from a plain one: same constructor, prototype, instanceof, util.inspect and deepStrictEqual. Resetting the prototype is a runtime call (~50-110 ns), paid
 * once per view made, never on getBlock/returnBlock. test/protector.test.ts holds the built-in
 * maps stable.
 */

// One subclass per built-in, each with its own initial map. compat constructs them by name (a
// literal `new` is V8's fast construct path); ownView() looks them up by type.
export class OwnInt8Array extends Int8Array {}
export class OwnUint8Array extends Uint8Array {}
export class OwnUint8ClampedArray extends Uint8ClampedArray {}
export class OwnInt16Array extends Int16Array {}
export class OwnUint16Array extends Uint16Array {}
export class OwnInt32Array extends Int32Array {}
export class OwnUint32Array extends Uint32Array {}
export class OwnFloat32Array extends Float32Array {}
export class OwnFloat64Array extends Float64Array {}
export class OwnBigInt64Array extends BigInt64Array {}
export class OwnBigUint64Array extends BigUint64Array {}
// (DataView's constructor is generic in TypeScript's lib, which a class cannot extend as is.)
const DataViewBase: new (buffer: ArrayBuffer, byteOffset: number, byteLength: number) => DataView = DataView;
export class OwnDataView extends DataViewBase {}
/** Buffers are Uint8Arrays whose prototype is Buffer.prototype (Node's FastBuffer is exactly that). */
export class OwnBuffer extends Uint8Array {}

const OWN_VIEWS = new Map<Function, new (buffer: ArrayBuffer, byteOffset: number, length: number) => object>([
  [Int8Array, OwnInt8Array],
  [Uint8Array, OwnUint8Array],
  [Uint8ClampedArray, OwnUint8ClampedArray],
  [Int16Array, OwnInt16Array],
  [Uint16Array, OwnUint16Array],
  [Int32Array, OwnInt32Array],
  [Uint32Array, OwnUint32Array],
  [Float32Array, OwnFloat32Array],
  [Float64Array, OwnFloat64Array],
  [BigInt64Array, OwnBigInt64Array],
  [BigUint64Array, OwnBigUint64Array],
]);

/** Gives an object made by an Own* class its built-in prototype back; returns it. */
export function plain<T>(object: object, prototype: object): T {
  Object.setPrototypeOf(object, prototype);
  return object as T;
}

/** A `type` view of `length` elements at `byteOffset` in `buffer`, on a map of its own (see above). */
export function ownView<T extends PoolArray>(type: PoolArrayConstructor<T>, buffer: ArrayBuffer, byteOffset: number, length: number): T {
  return ownViewMaker(type)(buffer, byteOffset, length);
}

/** ownView for one type, looked up once: a pool makes a view per getRun of a new start or length. */
export function ownViewMaker<T extends PoolArray>(type: PoolArrayConstructor<T>): (buffer: ArrayBuffer, byteOffset: number, length: number) => T {
  const Own = OWN_VIEWS.get(type);
  if (Own === undefined) throw new TypeError(`slabpool: no own-map view class for ${type.name}`);
  const prototype = type.prototype;
  return (buffer, byteOffset, length) => plain<T>(new Own(buffer, byteOffset, length), prototype);
}
