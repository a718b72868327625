/**
 * The client over an injected {@linkcode Transport}: streamed size limits stop reading early (the real registry
 * always sends Content-Length, so this needs a body without one), and redirects drop credentials off-host.
 *
 * @module
 */
import { assert, assertEquals, assertRejects } from "../../assert.ts";
import { isAirlockError } from "../../../core/errors.ts";
import { RegistryClient } from "../../../core/registry/client.ts";
import type { Transport, TransportRequest, TransportResponse } from "../../../core/registry/transport.ts";

const MiB = 1024 * 1024;

class FakeTransport implements Transport {
  readonly seen: { method: string; url: string; authorization: string | null }[] = [];
  pulled = 0;
  constructor(readonly answer: (req: TransportRequest, t: FakeTransport) => TransportResponse) {}
  send(req: TransportRequest): Promise<TransportResponse> {
    this.seen.push({
      method: req.method,
      url: req.url.href,
      authorization: req.headers.get("authorization"),
    });
    return Promise.resolve(this.answer(req, this));
  }
  close(): void {}
}

Deno.test("streamed size limit: reading stops just past the limit when there is no Content-Length", async () => {
  const transport = new FakeTransport((_req, t) => ({
    status: 200,
    headers: new Headers(),
    body: new ReadableStream<Uint8Array>({
      pull(c) {
        t.pulled++;
        if (t.pulled > 64) c.close();
        else c.enqueue(new Uint8Array(MiB));
      },
    }),
  }));
  const client = new RegistryClient({ transport });
  try {
    const e = await assertRejects(() =>
      client.getBlob({ registry: "reg.example", repository: "a" }, `sha256:${"a".repeat(64)}`)
    );
    assert(isAirlockError(e, "TOO_LARGE"), String(e));
    assert(transport.pulled <= 7, `pulled ${transport.pulled} MiB for a 4 MiB limit`);
  } finally {
    client.close();
  }
});

Deno.test("redirects: followed for GET, Authorization kept on the registry host and dropped elsewhere", async () => {
  const body = new TextEncoder().encode("blob!");
  const digest = "sha256:" + Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", body)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const transport = new FakeTransport((req) => {
    const auth = req.headers.get("authorization");
    if (req.url.host === "reg.example" && !auth) {
      return { status: 401, headers: new Headers({ "www-authenticate": 'Basic realm="r"' }), body: null };
    }
    if (req.url.pathname.endsWith(`/blobs/${digest}`)) {
      return { status: 307, headers: new Headers({ location: "/storage/x" }), body: null };
    }
    if (req.url.pathname === "/storage/x") {
      return {
        status: 302,
        headers: new Headers({ location: "https://cdn.example/blob?sig=1" }),
        body: null,
      };
    }
    return { status: 200, headers: new Headers(), body: new Blob([body]).stream() };
  });
  const client = new RegistryClient({
    transport,
    credentials: (r) => Promise.resolve(r === "reg.example" ? { username: "u", password: "p" } : undefined),
  });
  try {
    assertEquals(await client.getBlob({ registry: "reg.example", repository: "a" }, digest), body);
    assertEquals(transport.seen.map((s) => [s.url, s.authorization !== null]), [
      [`https://reg.example/v2/a/blobs/${digest}`, false],
      [`https://reg.example/v2/a/blobs/${digest}`, true],
      ["https://reg.example/storage/x", true],
      ["https://cdn.example/blob?sig=1", false],
    ]);
  } finally {
    client.close();
  }
});

Deno.test("Docker Hub: docker.io is served by registry-1.docker.io; credentials looked up as docker.io", async () => {
  const asked: string[] = [];
  const transport = new FakeTransport((req) =>
    req.headers.has("authorization")
      ? { status: 404, headers: new Headers(), body: null }
      : { status: 401, headers: new Headers({ "www-authenticate": 'Basic realm="hub"' }), body: null }
  );
  const client = new RegistryClient({
    transport,
    credentials: (r) => {
      asked.push(r);
      return Promise.resolve({ username: "hubuser", password: "hubpw" });
    },
  });
  try {
    assertEquals(
      await client.headManifest({ registry: "docker.io", repository: "library/alpine", tag: "3" }),
      undefined,
    );
    assertEquals(transport.seen[0].url, "https://registry-1.docker.io/v2/library/alpine/manifests/3");
    assertEquals(asked, ["docker.io"]);
    assertEquals(transport.seen.length, 2);
  } finally {
    client.close();
  }
});
