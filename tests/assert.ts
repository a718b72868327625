/**
 * Test assertions. JSR's `@std/assert` is unreachable here, so these wrap `node:assert/strict`
 * with the names the Deno standard library uses.
 *
 * @module
 */
import assert from "node:assert/strict";

/** Asserts deep, strict equality. */
export function assertEquals<T>(actual: unknown, expected: T, message?: string): asserts actual is T {
  assert.deepStrictEqual(actual, expected, message);
}

/** Asserts deep inequality. */
export function assertNotEquals(actual: unknown, expected: unknown, message?: string): void {
  assert.notDeepStrictEqual(actual, expected, message);
}

/** Asserts that a value is truthy. */
export function assert_(value: unknown, message?: string): asserts value {
  assert.ok(value, message);
}
export { assert_ as assert };

/** Asserts that `actual` contains `expected`. */
export function assertStringIncludes(actual: string, expected: string, message?: string): void {
  if (!actual.includes(expected)) {
    throw new assert.AssertionError({
      message: message ?? `expected ${JSON.stringify(actual)} to include ${JSON.stringify(expected)}`,
      actual,
      expected,
      operator: "includes",
    });
  }
}

/** Asserts that `actual` matches the regular expression. */
export function assertMatch(actual: string, expected: RegExp, message?: string): void {
  assert.match(actual, expected, message);
}

/** Asserts that `fn` throws; returns the error. Checks the class and that the message includes `msgIncludes`. */
export function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  // deno-lint-ignore no-explicit-any
  errorClass?: new (...args: any[]) => E,
  msgIncludes?: string,
): E {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  return checkError(caught, errorClass, msgIncludes);
}

/** Asserts that the promise returned by `fn` rejects; returns the error. */
export async function assertRejects<E extends Error = Error>(
  fn: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  errorClass?: new (...args: any[]) => E,
  msgIncludes?: string,
): Promise<E> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  return checkError(caught, errorClass, msgIncludes);
}

function checkError<E extends Error>(
  caught: unknown,
  // deno-lint-ignore no-explicit-any
  errorClass?: new (...args: any[]) => E,
  msgIncludes?: string,
): E {
  if (caught === undefined) {
    throw new assert.AssertionError({ message: "expected an error, none was thrown" });
  }
  if (errorClass && !(caught instanceof errorClass)) {
    throw new assert.AssertionError({
      message: `expected ${errorClass.name}, got ${
        caught instanceof Error ? caught.constructor.name : typeof caught
      }: ${String((caught as Error)?.message ?? caught)}`,
    });
  }
  const err = caught as E;
  if (msgIncludes !== undefined) assertStringIncludes(err.message, msgIncludes);
  return err;
}
