/**
 * Where the images of a Kubernetes object are: the pod spec of a Pod and of every pod template holder
 * (PodTemplate, ReplicationController, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob), and in it
 * each image the kubelet pulls: `containers[*].image`, `initContainers[*].image` (sidecars are init containers
 * with `restartPolicy: Always`), `ephemeralContainers[*].image` (`kubectl debug`), and `volumes[*].image.reference`
 * (image volumes). Each is returned with its JSON Pointer, so that the mutating endpoint can rewrite it.
 *
 * @module
 */
import { AirlockError } from "../errors.ts";
import type { GroupVersionKind, JsonObject } from "./review.ts";

/** One image the kubelet will pull for an object. */
export interface ImageSlot {
  /** The image as written (`nginx:1.25`, `reg.io/app@sha256:…`). */
  readonly image: string;
  /** JSON Pointer of the string (`/spec/template/spec/containers/0/image`). */
  readonly path: string;
  /** The container (or volume) name, for messages. */
  readonly container: string;
  /** Which list it is in. */
  readonly field: "containers" | "initContainers" | "ephemeralContainers" | "volumes";
}

/** Where the pod spec sits, per `group/Kind` (any version: the shape is the same in each). */
const POD_SPEC_PATHS: Readonly<Record<string, readonly string[]>> = {
  "/Pod": ["spec"],
  "/PodTemplate": ["template", "spec"],
  "/ReplicationController": ["spec", "template", "spec"],
  "apps/Deployment": ["spec", "template", "spec"],
  "apps/ReplicaSet": ["spec", "template", "spec"],
  "apps/StatefulSet": ["spec", "template", "spec"],
  "apps/DaemonSet": ["spec", "template", "spec"],
  "batch/Job": ["spec", "template", "spec"],
  "batch/CronJob": ["spec", "jobTemplate", "spec", "template", "spec"],
};

/**
 * The JSON path (object keys) of the pod spec of objects of `kind`, or `undefined` for kinds that hold no pod.
 */
export function podSpecPath(kind: GroupVersionKind): readonly string[] | undefined {
  return POD_SPEC_PATHS[`${kind.group}/${kind.kind}`];
}

function malformed(where: string, problem: string): AirlockError {
  return new AirlockError("INVALID_ARGUMENT", `malformed object: ${where} ${problem}`);
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** RFC 6901: `~` → `~0`, `/` → `~1`. */
function pointerSegment(s: string): string {
  return s.replaceAll("~", "~0").replaceAll("/", "~1");
}

/**
 * Every image of `object` (of `kind`), in spec order: containers, init containers, ephemeral containers, image
 * volumes. A missing pod spec or list has no images.
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` when a list is not an array of objects or an image is not a string
 * (the API server never sends such objects; a webhook that skipped them would let anything through).
 */
export function podImages(object: JsonObject | undefined, kind: GroupVersionKind): ImageSlot[] {
  const path = podSpecPath(kind);
  if (object === undefined || path === undefined) return [];
  let spec: unknown = object;
  for (const key of path) {
    if (!isObject(spec)) throw malformed(`/${path.join("/")}`, "is not an object");
    spec = spec[key];
    if (spec === undefined || spec === null) return [];
  }
  if (!isObject(spec)) throw malformed(`/${path.join("/")}`, "is not an object");
  const base = "/" + path.map(pointerSegment).join("/");
  const slots: ImageSlot[] = [];
  for (const field of ["containers", "initContainers", "ephemeralContainers"] as const) {
    for (const [i, c] of list(spec, field, base)) {
      const where = `${base}/${field}/${i}`;
      const image = c.image;
      if (image === undefined || image === null) {
        // No image: the API server refuses such a Pod; a template without one cannot run either.
        throw malformed(where, "has no image");
      }
      if (typeof image !== "string") throw malformed(`${where}/image`, "is not a string");
      slots.push({ image, path: `${where}/image`, container: containerName(c), field });
    }
  }
  for (const [i, v] of list(spec, "volumes", base)) {
    const source = v.image;
    if (source === undefined || source === null) continue;
    const where = `${base}/volumes/${i}/image`;
    if (!isObject(source)) throw malformed(where, "is not an object");
    const reference = source.reference;
    if (reference === undefined || reference === null) continue;
    if (typeof reference !== "string") throw malformed(`${where}/reference`, "is not a string");
    slots.push({
      image: reference,
      path: `${where}/reference`,
      container: containerName(v),
      field: "volumes",
    });
  }
  return slots;
}

function list(spec: JsonObject, field: string, base: string): [number, JsonObject][] {
  const v = spec[field];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw malformed(`${base}/${field}`, "is not an array");
  return v.map((item, i) => {
    if (!isObject(item)) throw malformed(`${base}/${field}/${i}`, "is not an object");
    return [i, item];
  });
}

function containerName(c: JsonObject): string {
  return typeof c.name === "string" ? c.name : "";
}

/**
 * The images to check for an operation: on CREATE every image; on UPDATE only images that the old object did not
 * already have somewhere in its pod spec (unchanged images were admitted when they were set).
 */
export function changedImages(current: readonly ImageSlot[], old: readonly ImageSlot[]): ImageSlot[] {
  if (old.length === 0) return [...current];
  const before = new Set(old.map((s) => s.image));
  return current.filter((s) => !before.has(s.image));
}
