/**
 * AdmissionReview requests in the shape the Kubernetes API server sends them (`admission.k8s.io/v1`, built from
 * kubernetes `staging/src/k8s.io/api/admission/v1/types.go` and the API server's `CreateV1AdmissionReview`:
 * `uid`, `kind`, `resource`, `subResource`, `requestKind`, `requestResource`, `requestSubResource`, `name`,
 * `namespace`, `operation`, `userInfo` (with `extra`), `object`, `oldObject` (JSON `null` when absent: an empty
 * `RawExtension` marshals to `null`), `dryRun` (always sent), `options` (the operation's options object)). The
 * objects are what the API server holds at admission time: defaulted, as `kubectl apply` of ordinary manifests
 * produces them.
 *
 * Real-world cases: a Deployment with an init container and a sidecar (an init container with
 * `restartPolicy: Always`), a CronJob, `kubectl debug` adding an ephemeral container (an UPDATE of the
 * `pods/ephemeralcontainers` subresource), and `kubectl apply --dry-run=server`.
 *
 * @module
 */

/** A JSON object. */
export type Json = Record<string, unknown>;

const USER = {
  username: "kubernetes-admin",
  groups: ["kubeadm:cluster-admins", "system:authenticated"],
  extra: {},
};

const RESOURCES: Record<string, { group: string; version: string; resource: string }> = {
  Pod: { group: "", version: "v1", resource: "pods" },
  Deployment: { group: "apps", version: "v1", resource: "deployments" },
  ReplicaSet: { group: "apps", version: "v1", resource: "replicasets" },
  StatefulSet: { group: "apps", version: "v1", resource: "statefulsets" },
  DaemonSet: { group: "apps", version: "v1", resource: "daemonsets" },
  Job: { group: "batch", version: "v1", resource: "jobs" },
  CronJob: { group: "batch", version: "v1", resource: "cronjobs" },
  ReplicationController: { group: "", version: "v1", resource: "replicationcontrollers" },
  PodTemplate: { group: "", version: "v1", resource: "podtemplates" },
  ConfigMap: { group: "", version: "v1", resource: "configmaps" },
};

/** Options of {@linkcode review}. */
export interface ReviewOptions {
  /** Default CREATE. */
  operation?: "CREATE" | "UPDATE" | "DELETE" | "CONNECT";
  /** The old object (UPDATE, DELETE). */
  oldObject?: Json;
  /** A subresource (`ephemeralcontainers`). */
  subResource?: string;
  /** Dry run (`kubectl apply --dry-run=server`). */
  dryRun?: boolean;
  /** Default: a random UUID. */
  uid?: string;
}

/**
 * A v1 AdmissionReview for `object` (its `kind` and `metadata` give kind, name and namespace).
 *
 * @example
 * ```ts
 * const body = review(deployment("shop", "web", { containers: [container("app", img)] }));
 * ```
 */
export function review(object: Json, o: ReviewOptions = {}): Json {
  const kind = object.kind as string;
  const meta = object.metadata as { name?: string; namespace?: string };
  const r = RESOURCES[kind];
  const [group, version] = (object.apiVersion as string).includes("/")
    ? (object.apiVersion as string).split("/")
    : ["", object.apiVersion as string];
  const operation = o.operation ?? "CREATE";
  const options = operation === "CREATE"
    ? {
      kind: "CreateOptions",
      apiVersion: "meta.k8s.io/v1",
      fieldManager: "kubectl-client-side-apply",
      fieldValidation: "Strict",
      ...(o.dryRun ? { dryRun: ["All"] } : {}),
    }
    : operation === "UPDATE"
    ? {
      kind: "UpdateOptions",
      apiVersion: "meta.k8s.io/v1",
      fieldManager: "kubectl",
      ...(o.dryRun ? { dryRun: ["All"] } : {}),
    }
    : null;
  return {
    kind: "AdmissionReview",
    apiVersion: "admission.k8s.io/v1",
    request: {
      uid: o.uid ?? crypto.randomUUID(),
      kind: { group, version, kind },
      resource: { group: r.group, version: r.version, resource: r.resource },
      ...(o.subResource ? { subResource: o.subResource } : {}),
      requestKind: { group, version, kind },
      requestResource: { group: r.group, version: r.version, resource: r.resource },
      ...(o.subResource ? { requestSubResource: o.subResource } : {}),
      name: meta.name ?? "",
      namespace: meta.namespace ?? "",
      operation,
      userInfo: USER,
      object: operation === "DELETE" ? null : object,
      oldObject: o.oldObject ?? null,
      dryRun: o.dryRun ?? false,
      options,
    },
  };
}

/** A container as the API server defaults it. */
export function container(name: string, image: string, extra: Json = {}): Json {
  return {
    name,
    image,
    ports: [{ containerPort: 8080, protocol: "TCP" }],
    resources: {},
    terminationMessagePath: "/dev/termination-log",
    terminationMessagePolicy: "File",
    imagePullPolicy: "IfNotPresent",
    ...extra,
  };
}

/** A defaulted pod spec. */
export function podSpec(parts: { containers: Json[]; initContainers?: Json[]; volumes?: Json[] }): Json {
  return {
    ...(parts.volumes ? { volumes: parts.volumes } : {}),
    ...(parts.initContainers ? { initContainers: parts.initContainers } : {}),
    containers: parts.containers,
    restartPolicy: "Always",
    terminationGracePeriodSeconds: 30,
    dnsPolicy: "ClusterFirst",
    securityContext: {},
    schedulerName: "default-scheduler",
  };
}

function metadata(namespace: string, name: string): Json {
  return {
    name,
    namespace,
    uid: crypto.randomUUID(),
    creationTimestamp: "2026-11-20T10:00:00Z",
    labels: { app: name },
    annotations: {
      "kubectl.kubernetes.io/last-applied-configuration":
        `{"apiVersion":"…","kind":"…","metadata":{"name":"${name}"}}\n`,
    },
    managedFields: [{ manager: "kubectl-client-side-apply", operation: "Update", apiVersion: "v1" }],
  };
}

/** A Pod. */
export function pod(namespace: string, name: string, spec: Json): Json {
  return { kind: "Pod", apiVersion: "v1", metadata: metadata(namespace, name), spec, status: {} };
}

/** A defaulted Deployment. */
export function deployment(namespace: string, name: string, spec: Json): Json {
  return {
    kind: "Deployment",
    apiVersion: "apps/v1",
    metadata: metadata(namespace, name),
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: name } },
      template: { metadata: { creationTimestamp: null, labels: { app: name } }, spec },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: "25%", maxSurge: "25%" } },
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 600,
    },
    status: {},
  };
}

/** A defaulted CronJob. */
export function cronJob(namespace: string, name: string, spec: Json): Json {
  return {
    kind: "CronJob",
    apiVersion: "batch/v1",
    metadata: metadata(namespace, name),
    spec: {
      schedule: "*/5 * * * *",
      concurrencyPolicy: "Allow",
      suspend: false,
      jobTemplate: {
        metadata: { creationTimestamp: null },
        spec: {
          template: { metadata: { creationTimestamp: null }, spec: { ...spec, restartPolicy: "OnFailure" } },
          backoffLimit: 6,
        },
      },
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 1,
    },
    status: {},
  };
}

/** A Deployment with an init container and a sidecar (an init container with `restartPolicy: Always`). */
export function deploymentWithSidecar(
  namespace: string,
  name: string,
  images: { app: string; init: string; sidecar: string },
): Json {
  return deployment(
    namespace,
    name,
    podSpec({
      initContainers: [
        container("migrate", images.init, { command: ["/migrate"] }),
        container("log-shipper", images.sidecar, { restartPolicy: "Always" }),
      ],
      containers: [container("app", images.app)],
    }),
  );
}

/**
 * `kubectl debug -it pod/NAME --image=IMAGE --target=app`: an UPDATE of `pods/ephemeralcontainers`, the Pod with
 * the ephemeral container added, and the Pod as it was.
 */
export function debugContainerReview(running: Json, image: string): Json {
  const before = structuredClone(running);
  const after = structuredClone(running);
  (after.spec as Json).ephemeralContainers = [{
    name: "debugger-x7k2q",
    image,
    resources: {},
    terminationMessagePath: "/dev/termination-log",
    terminationMessagePolicy: "File",
    imagePullPolicy: "IfNotPresent",
    stdin: true,
    tty: true,
    targetContainerName: "app",
  }];
  return review(after, { operation: "UPDATE", oldObject: before, subResource: "ephemeralcontainers" });
}
