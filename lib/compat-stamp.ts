/**
 * The base of compat's marks: private fields stamped onto objects the pool hands out (a base
 * constructor that returns its argument lets a subclass add its private field to any object).
 * Unlike a property, a private field is invisible to reflection, util.inspect and
 * deepStrictEqual, so a pooled array compares equal to a plain one; and stamping one costs a few
 * ns, where defineProperty costs ~150.
 */
export class Stamp {
  constructor(target: object) {
    return target as Stamp;
  }
}
