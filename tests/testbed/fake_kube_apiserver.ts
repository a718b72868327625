/**
 * A FAKE Kubernetes API server, only as much of one as `kubectl apply --dry-run=client` needs to run without a
 * cluster (no kube-apiserver can run here: Debian ships only the client). It speaks the real wire format of
 * discovery — `GET /api` (`APIVersions`), `/apis` (`APIGroupList`), `/api/v1` and
 * `/apis/admissionregistration.k8s.io/v1` (`APIResourceList` naming the two webhook configuration resources) —
 * and answers every object `GET` with the `Status` 404 a real server gives for an object that does not exist
 * (which is what makes kubectl's client-side dry run print "created (dry run)"). Everything else is a 404
 * `Status`. Nothing is stored; no request changes anything. Requests are recorded for the test to read.
 *
 * @module
 */

/** One request the fake saw. */
export interface FakeKubeRequest {
  /** HTTP method. */
  readonly method: string;
  /** Path without query. */
  readonly path: string;
}

/** A running fake. */
export interface FakeKubeApiServer extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Every request, in order. */
  readonly requests: readonly FakeKubeRequest[];
  /** Stops it. */
  stop(): Promise<void>;
}

const WEBHOOK_GROUP = "admissionregistration.k8s.io";
const VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

function status(code: number, reason: string, message: string, details?: Record<string, string>): Response {
  return Response.json({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  }, { status: code });
}

/**
 * Starts the fake on 127.0.0.1 (a port chosen at run time).
 *
 * @example
 * ```ts
 * await using api = await startFakeKubeApiServer();
 * ```
 */
export function startFakeKubeApiServer(): Promise<FakeKubeApiServer> {
  const requests: FakeKubeRequest[] = [];
  const server: Deno.HttpServer<Deno.NetAddr> = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
  }, (req): Response => {
    const { pathname } = new URL(req.url);
    requests.push({ method: req.method, path: pathname });
    if (req.method !== "GET") return status(405, "MethodNotAllowed", "this fake only answers GET");
    switch (pathname) {
      case "/api":
        return Response.json({
          kind: "APIVersions",
          versions: ["v1"],
          serverAddressByClientCIDRs: [{
            clientCIDR: "0.0.0.0/0",
            serverAddress: `127.0.0.1:${server.addr.port}`,
          }],
        });
      case "/apis":
        return Response.json({
          kind: "APIGroupList",
          apiVersion: "v1",
          groups: [{
            name: WEBHOOK_GROUP,
            versions: [{ groupVersion: `${WEBHOOK_GROUP}/v1`, version: "v1" }],
            preferredVersion: { groupVersion: `${WEBHOOK_GROUP}/v1`, version: "v1" },
          }],
        });
      case "/api/v1":
        return Response.json({ kind: "APIResourceList", groupVersion: "v1", resources: [] });
      case `/apis/${WEBHOOK_GROUP}/v1`:
        return Response.json({
          kind: "APIResourceList",
          apiVersion: "v1",
          groupVersion: `${WEBHOOK_GROUP}/v1`,
          resources: ["Mutating", "Validating"].map((k) => ({
            name: `${k.toLowerCase()}webhookconfigurations`,
            singularName: `${k.toLowerCase()}webhookconfiguration`,
            namespaced: false,
            kind: `${k}WebhookConfiguration`,
            verbs: VERBS,
          })),
        });
    }
    const m = pathname.match(/^\/apis\/admissionregistration\.k8s\.io\/v1\/([a-z]+)\/([^/]+)$/);
    if (m) {
      return status(404, "NotFound", `${m[1]}.${WEBHOOK_GROUP} "${m[2]}" not found`, {
        name: m[2],
        group: WEBHOOK_GROUP,
        kind: m[1],
      });
    }
    return status(404, "NotFound", "the server could not find the requested resource");
  });
  const stop = async () => {
    await server.shutdown();
  };
  return Promise.resolve({
    url: `http://127.0.0.1:${server.addr.port}`,
    requests,
    stop,
    [Symbol.asyncDispose]: stop,
  });
}
