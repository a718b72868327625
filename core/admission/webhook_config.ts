/**
 * The `ValidatingWebhookConfiguration` and `MutatingWebhookConfiguration` that point the Kubernetes API server at
 * `airlock serve` (`airlock serve webhook-config`): both webhooks call the in-cluster Service over HTTPS (the
 * `caBundle` is the CA of airlock's serving certificate), for CREATE and UPDATE of Pods (and
 * `pods/ephemeralcontainers`, what `kubectl debug` writes) and every pod template holder, with
 * `failurePolicy: Fail` (no verdict, no pod), `sideEffects: None` (so dry-run requests are sent too),
 * `admissionReviewVersions: [v1]`, `timeoutSeconds` = the admission timeout + 2 s, and a `namespaceSelector`
 * leaving out the exempt namespaces (`kubernetes.io/metadata.name`, set by the API server on every namespace).
 * The mutating webhook is re-invoked when a later webhook changes the object (`reinvocationPolicy: IfNeeded`).
 *
 * @module
 */
import { AirlockError } from "../errors.ts";
import { base64Encode } from "../encoding/base64.ts";

/** What the configuration is made of. */
export interface WebhookConfigOptions {
  /** The Service's namespace. */
  readonly namespace: string;
  /** The Service's name. */
  readonly service: string;
  /** The Service port (default 443). */
  readonly port?: number;
  /** The CA bundle (PEM) that signed airlock's serving certificate. */
  readonly caBundlePem: string;
  /** Namespaces left out. */
  readonly exemptNamespaces: readonly string[];
  /** The admission timeout, in ms. */
  readonly timeoutMs: number;
  /** The configurations' name (default `airlock`). */
  readonly name?: string;
}

/** The resources reviewed, by API group (all v1). */
export const REVIEWED_RESOURCES: readonly { group: string; resources: readonly string[] }[] = [
  { group: "", resources: ["pods", "pods/ephemeralcontainers", "podtemplates", "replicationcontrollers"] },
  { group: "apps", resources: ["deployments", "replicasets", "statefulsets", "daemonsets"] },
  { group: "batch", resources: ["jobs", "cronjobs"] },
];

const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const NAME_RE = /^[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?$/;

function q(s: string): string {
  return JSON.stringify(s); // a JSON string is a YAML double-quoted scalar
}

/**
 * The two configurations as one YAML stream (`---` between them).
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` for a namespace or service that is not a DNS label, a bad port, or a
 * CA bundle without a certificate.
 */
export function webhookConfigYaml(o: WebhookConfigOptions): string {
  for (const [what, v] of [["namespace", o.namespace], ["service name", o.service]]) {
    if (!DNS_LABEL.test(v)) {
      throw new AirlockError("INVALID_ARGUMENT", `invalid ${what} ${q(v)}: not a DNS label`);
    }
  }
  const name = o.name ?? "airlock";
  if (!NAME_RE.test(name)) throw new AirlockError("INVALID_ARGUMENT", `invalid name ${q(name)}`);
  const port = o.port ?? 443;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new AirlockError("INVALID_ARGUMENT", `invalid port ${port}`);
  }
  if (!/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.test(o.caBundlePem)) {
    throw new AirlockError("INVALID_ARGUMENT", "the CA bundle holds no PEM certificate");
  }
  const timeoutSeconds = Math.min(30, Math.ceil(o.timeoutMs / 1000) + 2);
  const caBundle = base64Encode(new TextEncoder().encode(o.caBundlePem));
  const webhook = (kind: "validate" | "mutate"): string[] => {
    const lines = [
      `  - name: ${q(`${kind}.${o.service}.${o.namespace}.svc`)}`,
      `    admissionReviewVersions: ["v1"]`,
      `    sideEffects: None`,
      `    failurePolicy: Fail`,
      `    matchPolicy: Equivalent`,
      `    timeoutSeconds: ${timeoutSeconds}`,
      `    clientConfig:`,
      `      service:`,
      `        namespace: ${q(o.namespace)}`,
      `        name: ${q(o.service)}`,
      `        path: ${q(`/v1/admission/${kind}`)}`,
      `        port: ${port}`,
      `      caBundle: ${q(caBundle)}`,
    ];
    if (o.exemptNamespaces.length > 0) {
      lines.push(
        `    namespaceSelector:`,
        `      matchExpressions:`,
        `        - key: kubernetes.io/metadata.name`,
        `          operator: NotIn`,
        `          values: [${o.exemptNamespaces.map(q).join(", ")}]`,
      );
    }
    lines.push(`    rules:`);
    for (const r of REVIEWED_RESOURCES) {
      lines.push(
        `      - apiGroups: [${q(r.group)}]`,
        `        apiVersions: ["v1"]`,
        `        operations: ["CREATE", "UPDATE"]`,
        `        resources: [${r.resources.map(q).join(", ")}]`,
        `        scope: Namespaced`,
      );
    }
    if (kind === "mutate") lines.push(`    reinvocationPolicy: IfNeeded`);
    return lines;
  };
  const doc = (kind: "Validating" | "Mutating"): string =>
    [
      `apiVersion: admissionregistration.k8s.io/v1`,
      `kind: ${kind}WebhookConfiguration`,
      `metadata:`,
      `  name: ${q(name)}`,
      `  labels:`,
      `    app.kubernetes.io/name: airlock`,
      `webhooks:`,
      ...webhook(kind === "Validating" ? "validate" : "mutate"),
    ].join("\n");
  return `${doc("Mutating")}\n---\n${doc("Validating")}\n`;
}
