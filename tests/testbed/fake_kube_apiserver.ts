/**
 * A FAKE Kubernetes API server, only as much of one as `kubectl apply --dry-run=client` needs to run without a
 * cluster (no kube-apiserver can run here: Debian ships only the client). It speaks the real wire format of
 * discovery — `GET /api` (`APIVersions`), `/apis` (`APIGroupList`), `/api/v1`, `/apis/apps/v1` and
 * `/apis/admissionregistration.k8s.io/v1` (`APIResourceList`: namespaces, configmaps, secrets, services, pods,
 * deployments, the two webhook configurations) — and answers every object `GET` with the `Status` 404 a real
 * server gives for an object that does not exist
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

const VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

/** The resources the fake knows, by group version (`v1` is the core group). */
const RESOURCES: Record<string, { kind: string; name: string; namespaced: boolean }[]> = {
  "v1": [
    { kind: "Namespace", name: "namespaces", namespaced: false },
    { kind: "ConfigMap", name: "configmaps", namespaced: true },
    { kind: "Secret", name: "secrets", namespaced: true },
    { kind: "Service", name: "services", namespaced: true },
    { kind: "Pod", name: "pods", namespaced: true },
  ],
  "apps/v1": [{ kind: "Deployment", name: "deployments", namespaced: true }],
  "admissionregistration.k8s.io/v1": [
    { kind: "MutatingWebhookConfiguration", name: "mutatingwebhookconfigurations", namespaced: false },
    { kind: "ValidatingWebhookConfiguration", name: "validatingwebhookconfigurations", namespaced: false },
  ],
};

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

function resourceList(groupVersion: string): Response {
  return Response.json({
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion,
    resources: RESOURCES[groupVersion].map((r) => ({
      name: r.name,
      singularName: r.kind.toLowerCase(),
      namespaced: r.namespaced,
      kind: r.kind,
      verbs: VERBS,
    })),
  });
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
    if (pathname === "/api") {
      return Response.json({
        kind: "APIVersions",
        versions: ["v1"],
        serverAddressByClientCIDRs: [{
          clientCIDR: "0.0.0.0/0",
          serverAddress: `127.0.0.1:${server.addr.port}`,
        }],
      });
    }
    if (pathname === "/apis") {
      const groups = Object.keys(RESOURCES).filter((gv) => gv.includes("/"));
      return Response.json({
        kind: "APIGroupList",
        apiVersion: "v1",
        groups: groups.map((gv) => ({
          name: gv.split("/")[0],
          versions: [{ groupVersion: gv, version: "v1" }],
          preferredVersion: { groupVersion: gv, version: "v1" },
        })),
      });
    }
    if (pathname === "/api/v1") return resourceList("v1");
    const gv = pathname.match(/^\/apis\/([a-z0-9.-]+\/v1)$/);
    if (gv && RESOURCES[gv[1]]) return resourceList(gv[1]);
    // An object: /api/v1/[namespaces/NS/]RESOURCE/NAME or /apis/GROUP/v1/[namespaces/NS/]RESOURCE/NAME.
    const m = pathname.match(
      /^\/(?:api\/v1|apis\/([a-z0-9.-]+)\/v1)\/(?:namespaces\/[^/]+\/)?([a-z]+)\/([^/]+)$/,
    );
    if (m) {
      const group = m[1] ?? "";
      return status(404, "NotFound", `${m[2]}${group ? "." + group : ""} "${m[3]}" not found`, {
        name: m[3],
        group,
        kind: m[2],
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
