/**
 * A FAKE registry for the hostile-input suite that answers each request with a seeded hostile response — any
 * status, the right body or a corrupted, truncated, empty, oversized or garbage one, wrong or malformed
 * `Docker-Content-Digest` and `Content-Type`, redirects in loops, to other hosts or to odd schemes, `401`
 * challenges with malformed `WWW-Authenticate` headers and token realms answering junk, `429` with absurd
 * `Retry-After` — so that the client's handling of every answer can be checked: verified bytes or a clear error,
 * in bounded time, credentials never sent off-host and never printed. It speaks the distribution protocol's
 * paths (`/v2/`, `/v2/<name>/manifests/<ref>`, `/v2/<name>/blobs/<digest>`) and serves plain HTTP on 127.0.0.1.
 * A second listener (another host for the client) serves token realms and records any other request that arrives
 * with credentials (a redirect must never carry them off-host).
 *
 * @module
 */
import type { Rng } from "./rng.ts";

const enc = new TextEncoder();

/** How one case answers. */
export interface HostileAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  /** The body; `oversize` streams 5 MiB of junk instead. */
  readonly body: Uint8Array | "oversize";
  /** What the case does, for messages. */
  readonly what: string;
}

/** The fake: its hosts, the answer of each case, and what the other host received with credentials. */
export interface HostileRegistry extends AsyncDisposable {
  /** `127.0.0.1:PORT`. */
  readonly host: string;
  /** The other host (`127.0.0.1:PORT2`), for cross-host redirects and token realms. */
  readonly otherHost: string;
  /** Sets the answer for requests of repository `name` (manifests and blobs). */
  set(name: string, answer: (path: string) => HostileAnswer): void;
  /** Authorization headers the other host received (must stay empty). */
  readonly leaked: string[];
  /** Requests served. */
  readonly served: () => number;
}

/** Starts the fake on 127.0.0.1 (two free ports). */
export function startHostileRegistry(): HostileRegistry {
  const cases = new Map<string, (path: string) => HostileAnswer>();
  const leaked: string[] = [];
  let served = 0;
  const respond = (a: HostileAnswer, method: string): Response => {
    const headers = new Headers(a.headers);
    // These statuses have no body (the Fetch standard refuses one).
    const nullBody = method === "HEAD" || a.status === 204 || a.status === 205 || a.status === 304;
    if (a.body === "oversize") {
      let left = 5 * 1024 * 1024;
      const chunk = new Uint8Array(64 * 1024).fill(0x7b);
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          if (left <= 0) return c.close();
          c.enqueue(chunk.subarray(0, Math.min(chunk.length, left)));
          left -= chunk.length;
        },
      });
      return new Response(nullBody ? null : body, { status: a.status, headers });
    }
    return new Response(nullBody ? null : a.body as Uint8Array<ArrayBuffer>, { status: a.status, headers });
  };
  const main = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    served++;
    const url = new URL(req.url);
    if (url.pathname === "/v2/" || url.pathname === "/v2") return new Response("{}", { status: 200 });
    if (url.pathname.startsWith("/token")) {
      return new Response(tokenJunk(url), { status: 200, headers: { "content-type": "application/json" } });
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/[^/]+$/.exec(url.pathname);
    const answer = m ? cases.get(m[1]) : undefined;
    if (!answer) {
      return new Response('{"errors":[{"code":"NAME_UNKNOWN","message":"unknown"}]}', { status: 404 });
    }
    return respond(answer(url.pathname), req.method);
  });
  const other = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    // A token realm is where the registry says credentials go (the Docker token protocol), a redirect is not.
    const auth = req.headers.get("authorization");
    const path = new URL(req.url).pathname;
    if (auth && !path.startsWith("/token")) leaked.push(`${req.method} ${path}: ${auth}`);
    if (path.startsWith("/token")) {
      return new Response(tokenJunk(new URL(req.url)), {
        status: 200,
        headers: { "content-type": "application/json" },
      });
    }
    return new Response("{}", { status: 200, headers: { "content-type": "application/json" } });
  });
  const stop = async () => {
    await Promise.allSettled([main.shutdown(), other.shutdown()]);
  };
  return {
    host: `127.0.0.1:${main.addr.port}`,
    otherHost: `127.0.0.1:${other.addr.port}`,
    set: (name, answer) => cases.set(name, answer),
    leaked,
    served: () => served,
    [Symbol.asyncDispose]: stop,
  };
}

/** What the token endpoint answers: junk of many kinds, chosen by the `scope` asked. */
function tokenJunk(url: URL): string {
  const pick = url.searchParams.get("service")?.length ?? 0;
  return [
    "",
    "{",
    "[]",
    "null",
    '{"token":1}',
    '{"token":""}',
    '{"access_token":"t","expires_in":-5}',
    '{"token":"a b\\r\\nX-Evil: 1"}',
    `{"token":"${"t".repeat(100_000)}"}`,
  ][pick % 9];
}

/**
 * A hostile answer for a read of `good` (whose digest is `digest`), on the fake at `host` with another host
 * `otherHost`.
 */
export function hostileAnswer(
  rng: Rng,
  good: Uint8Array,
  digest: string,
  mediaType: string,
  hosts: { host: string; otherHost: string },
): HostileAnswer {
  if (rng.chance(0.15)) {
    // The control: what a registry answers (the check can pass).
    return {
      status: 200,
      headers: { "docker-content-digest": digest, "content-type": mediaType },
      body: good,
      what: "good answer",
    };
  }
  const flipped = good.slice();
  flipped[rng.int(flipped.length)] ^= 1;
  const bodies: [string, Uint8Array | "oversize"][] = [
    ["good", good],
    ["flipped", flipped],
    ["truncated", good.subarray(0, rng.int(good.length))],
    ["empty", new Uint8Array(0)],
    ["garbage", enc.encode(rng.text(rng.int(300), '{}[]":,abc\\\u0000'))],
    ["oversize", "oversize"],
  ];
  const [bodyWhat, body] = rng.pick(bodies);
  const headers: Record<string, string> = {};
  const digestHeader = rng.pick([
    digest,
    `sha256:${"0".repeat(64)}`,
    "sha256:zz",
    "",
    undefined,
    digest.toUpperCase(),
  ]);
  if (digestHeader !== undefined) headers["docker-content-digest"] = digestHeader;
  const type = rng.pick([
    mediaType,
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.oci.image.index.v1+json",
    "text/html",
    "",
    undefined,
  ]);
  if (type !== undefined) headers["content-type"] = type;
  const status = rng.pick([
    200,
    200,
    200,
    200,
    201,
    204,
    206,
    301,
    302,
    307,
    308,
    400,
    401,
    403,
    404,
    416,
    429,
    500,
    503,
  ]);
  if (status >= 300 && status < 400) {
    headers.location = rng.pick([
      "/v2/",
      "",
      "javascript:alert(1)",
      "file:///etc/passwd",
      `http://${hosts.otherHost}/steal`,
      `http://${hosts.host}${"/x".repeat(rng.int(3))}`,
      "//" + hosts.otherHost + "/x",
      "http://[::1",
    ]);
  }
  if (status === 401) {
    headers["www-authenticate"] = rng.pick([
      'Basic realm="x"',
      'Bearer realm="http://' + hosts.host + '/token",service="' + "s".repeat(rng.int(12)) + '"',
      'Bearer realm="http://' + hosts.otherHost + '/token"',
      'Bearer realm="javascript:x"',
      "Bearer realm=",
      'Bearer ,,,,"""',
      "Negotiate",
      "",
      'Bearer realm="http://' + hosts.host + '/token",error="insufficient_scope"',
    ]);
  }
  if (status === 429 || status === 503) {
    headers["retry-after"] = rng.pick(["0", "-1", "1e10", "x", "99999999", ""]);
  }
  return { status, headers, body, what: `${status} ${bodyWhat} body, digest ${digestHeader}, type ${type}` };
}
