/**
 * Unit tests of the pure parts: errcode documents → error kinds, containers/image's "manifest unknown" rule,
 * Retry-After and backoff, network error classification.
 *
 * @module
 */
import { assert, assertEquals } from "../../assert.ts";
import { AirlockError } from "../../../core/errors.ts";
import {
  isManifestUnknown,
  parseErrorDocument,
  RegistryError,
  registryError,
} from "../../../core/registry/errors.ts";
import { backoffDelay, isRetryableStatus, parseRetryAfter } from "../../../core/registry/retry.ts";
import { networkError } from "../../../core/registry/transport.ts";

const doc = (code: string, message: string) => JSON.stringify({ errors: [{ code, message, detail: {} }] });

Deno.test("registryError: errcode and status map to airlock codes; message names the request and the registry's words", () => {
  const cases: [number, string, string][] = [
    [401, doc("UNAUTHORIZED", "authentication required"), "UNAUTHORIZED"],
    [403, doc("DENIED", "requested access to the resource is denied"), "DENIED"],
    [404, doc("MANIFEST_UNKNOWN", "manifest unknown"), "NOT_FOUND"],
    [404, doc("BLOB_UNKNOWN", "blob unknown to registry"), "NOT_FOUND"],
    [404, doc("NAME_UNKNOWN", "repository name not known to registry"), "NOT_FOUND"],
    [404, doc("UNKNOWN", "artifact a/b:x not found"), "NOT_FOUND"],
    [429, doc("TOOMANYREQUESTS", "slow down"), "RATE_LIMITED"],
    [413, "", "TOO_LARGE"],
    [400, doc("MANIFEST_INVALID", "manifest invalid"), "REGISTRY_ERROR"],
    [400, doc("DIGEST_INVALID", "provided digest did not match uploaded content"), "DIGEST_MISMATCH"],
    [500, doc("UNKNOWN", "unknown error"), "REGISTRY_ERROR"],
    [502, "<html>bad gateway</html>", "REGISTRY_ERROR"],
  ];
  for (const [status, body, code] of cases) {
    const e = registryError("reading manifest v1 in r/app", status, body);
    assertEquals(e.code, code, `${status} ${body}`);
    assert(e.message.startsWith(`reading manifest v1 in r/app: ${status} `), e.message);
  }
  assertEquals(
    registryError("x", 404, doc("MANIFEST_UNKNOWN", "manifest unknown")).message,
    "x: 404 MANIFEST_UNKNOWN: manifest unknown",
  );
  assertEquals(registryError("x", 404, "page not found").message, "x: 404 Not Found (page not found)");
  assertEquals(registryError("x", 502, "<html>…</html>").message, "x: 502 Bad Gateway");
  assertEquals(parseErrorDocument('{"errors":[]}'), []);
  assertEquals(parseErrorDocument("[1]"), []);
  assertEquals(parseErrorDocument('{"errors":[{"code":"denied","message":"m"}]}'), [{
    code: "DENIED",
    message: "m",
  }]);
});

Deno.test("isManifestUnknown: exactly containers/image's rule", () => {
  const yes = [
    registryError("x", 404, doc("MANIFEST_UNKNOWN", "manifest unknown")),
    registryError("x", 404, doc("UNKNOWN", "Not Found")), // registry.redhat.io
    registryError("x", 404, doc("UNKNOWN", "artifact cnrancher/hangar:sha256-ab.sig not found")), // Harbor
    registryError("x", 404, doc("UNKNOWN", "NOT FOUND here")),
    registryError("x", 404, "404 page not found"), // not an errcode document
    registryError("x", 404, ""),
    registryError("x", 404, '{"errors":[]}'),
    registryError("x", 200, doc("MANIFEST_UNKNOWN", "odd status, code decides")),
  ];
  const no = [
    registryError("x", 404, doc("NAME_UNKNOWN", "repository name not known to registry")),
    registryError("x", 404, doc("BLOB_UNKNOWN", "blob unknown")),
    registryError("x", 500, doc("UNKNOWN", "unknown error")),
    registryError("x", 401, doc("UNAUTHORIZED", "authentication required")),
    registryError("x", 403, doc("DENIED", "not found in your permissions? no")), // DENIED, not UNKNOWN
    registryError("x", 500, "internal error"), // non-404 without errcode
    registryError(
      "x",
      404,
      JSON.stringify({
        errors: [{ code: "NAME_UNKNOWN", message: "a" }, { code: "MANIFEST_UNKNOWN", message: "b" }],
      }),
    ),
    new AirlockError("NOT_FOUND", "not a registry answer"),
    new Error("manifest unknown"),
    undefined,
  ];
  for (const e of yes) assert(isManifestUnknown(e), (e as RegistryError).message);
  for (const e of no) assert(!isManifestUnknown(e), String((e as Error | undefined)?.message));
  // Only the first errcode entry counts (containers/image discards the rest).
  const two = registryError(
    "x",
    404,
    JSON.stringify({
      errors: [{ code: "MANIFEST_UNKNOWN", message: "a" }, { code: "NAME_UNKNOWN", message: "b" }],
    }),
  );
  assert(isManifestUnknown(two));
  assertEquals(two.errors.length, 2);
});

Deno.test("retry: retryable statuses, Retry-After forms, jittered capped backoff", () => {
  assertEquals([408, 429, 500, 502, 503, 504].map(isRetryableStatus), [true, true, true, true, true, true]);
  assertEquals([400, 401, 403, 404, 405, 501].map(isRetryableStatus), [
    false,
    false,
    false,
    false,
    false,
    false,
  ]);
  assertEquals(parseRetryAfter("3"), 3000);
  assertEquals(parseRetryAfter(" 0 "), 0);
  const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT");
  assertEquals(parseRetryAfter("Wed, 21 Oct 2015 07:28:05 GMT", now), 5000);
  assertEquals(parseRetryAfter("Wed, 21 Oct 2015 07:27:00 GMT", now), 0);
  assertEquals(parseRetryAfter("soon"), undefined);
  assertEquals(parseRetryAfter("-1"), undefined);
  assertEquals(parseRetryAfter(null), undefined);
  const policy = { retries: 3, baseDelayMs: 100, maxDelayMs: 1000 };
  for (let i = 0; i < 200; i++) {
    const d0 = backoffDelay(0, policy);
    const d3 = backoffDelay(3, policy);
    const d9 = backoffDelay(9, policy);
    assert(d0 >= 0 && d0 <= 100 && d3 <= 800 && d9 <= 1000);
  }
  assertEquals(backoffDelay(0, policy, 5000), 1000);
  assertEquals(backoffDelay(0, policy, 250), 250);
});

Deno.test("networkError: runtime errors classified, host named, resets retryable", () => {
  const url = new URL("https://reg.example:5000/v2/");
  const refused = networkError(
    new TypeError("client error (Connect): tcp connect error: Connection refused (os error 111)"),
    url,
  );
  assertEquals([refused.code, refused.retryable], ["REGISTRY_UNREACHABLE", false]);
  assertEquals(refused.message, "cannot reach registry reg.example:5000: connection refused");
  const nodeRefused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5000"), {
    code: "ECONNREFUSED",
  });
  assertEquals(networkError(nodeRefused, url).code, "REGISTRY_UNREACHABLE");
  const cert = networkError(
    new TypeError("client error (Connect): invalid peer certificate: UnknownIssuer"),
    url,
  );
  assertEquals(cert.code, "TLS_ERROR");
  assert(cert.message.includes("--cert-dir") && cert.message.includes("--tls-verify=false"));
  const reset = networkError(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }), url);
  assertEquals([reset.code, reset.retryable], ["REGISTRY_UNREACHABLE", true]);
  assertEquals(
    networkError(new DOMException("t", "TimeoutError"), url, { timedOut: true, timeoutMs: 5000 }).code,
    "TIMEOUT",
  );
  assertEquals(networkError(new DOMException("a", "AbortError"), url, { cancelled: true }).code, "CANCELLED");
});
