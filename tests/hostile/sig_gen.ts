/**
 * Hostile `.sig` content for the hostile-input suite: signed simple-signing payloads and their signature
 * annotations, mutated by a seeded generator (every mutation of a signed payload or of its signature is invalid
 * by construction: nothing but the untouched pair may verify), and `.sig` manifests mutated into JSON that
 * containers/image's reader must refuse or read, never crash on.
 *
 * @module
 */
import type { Rng } from "./rng.ts";

const enc = new TextEncoder();

/** A signed payload case: the bytes and annotations a `.sig` layer would carry, and whether they are intact. */
export interface SignedCase {
  /** The payload bytes. */
  readonly payload: Uint8Array;
  /** The layer annotations (the signature under `dev.cosignproject.cosign/signature`, maybe mutated). */
  readonly annotations: Record<string, string>;
  /** Whether payload and signature are the ones signed (only those may verify). */
  readonly intact: boolean;
  /** What was done. */
  readonly what: string;
}

const SIG = "dev.cosignproject.cosign/signature";

/**
 * A mutation of (`payload`, `signature`) signed by a key: one byte of the payload changed, the payload cut or
 * extended, the digest or identity text altered, the signature's base64 altered, cut, emptied or removed — or,
 * one case in eight, nothing (the control).
 */
export function mutateSigned(rng: Rng, payload: Uint8Array, signatureB64: string): SignedCase {
  const kind = rng.int(10);
  const p = payload.slice();
  const text = new TextDecoder().decode(payload);
  switch (kind) {
    case 0: {
      const at = rng.int(p.length);
      p[at] ^= 1 << rng.int(8);
      return {
        payload: p,
        annotations: { [SIG]: signatureB64 },
        intact: false,
        what: `payload byte ${at} flipped`,
      };
    }
    case 1:
      return {
        payload: payload.subarray(0, rng.int(payload.length)),
        annotations: { [SIG]: signatureB64 },
        intact: false,
        what: "payload cut",
      };
    case 2:
      return {
        payload: enc.encode(text + rng.pick([" ", "\n", "{}", "\u0000"])),
        annotations: { [SIG]: signatureB64 },
        intact: false,
        what: "payload extended",
      };
    case 3: {
      const m = /sha256:([0-9a-f]{64})/.exec(text);
      const i = m ? m.index + 7 + rng.int(64) : 0;
      const c = text[i] === "0" ? "1" : "0";
      return {
        payload: enc.encode(text.slice(0, i) + c + text.slice(i + 1)),
        annotations: { [SIG]: signatureB64 },
        intact: false,
        what: "digest changed",
      };
    }
    case 4:
      return {
        payload: enc.encode(text.replace('"docker-reference":"', '"docker-reference":"x')),
        annotations: { [SIG]: signatureB64 },
        intact: false,
        what: "identity changed",
      };
    case 5: {
      const chars = signatureB64.split("");
      const i = rng.int(chars.length - 4);
      chars[i] = chars[i] === "A" ? "B" : "A";
      return {
        payload,
        annotations: { [SIG]: chars.join("") },
        intact: false,
        what: "signature base64 altered",
      };
    }
    case 6:
      return {
        payload,
        annotations: {
          [SIG]: rng.pick(["", "%%%", "AAAA", signatureB64.slice(0, 10), signatureB64 + "AA=="]),
        },
        intact: false,
        what: "signature junk",
      };
    case 7:
      return { payload, annotations: {}, intact: false, what: "signature missing" };
    case 8:
      return {
        payload: enc.encode(
          text.replace('"critical":{', '"critical":{"identity":{"docker-reference":"evil.io/x"},'),
        ),
        annotations: { [SIG]: signatureB64 },
        intact: false,
        what: "duplicate identity injected",
      };
    default:
      return { payload, annotations: { [SIG]: signatureB64 }, intact: true, what: "intact (control)" };
  }
}

/** A `.sig` manifest case: its bytes, and what containers/image's reader does with them when that is certain. */
export interface SigManifestCase {
  readonly bytes: Uint8Array;
  /**
   * `valid`: untouched, it must be read; `invalid`: Go's decoder refuses it (cut short, or an annotation value
   * that is not a string), so it must be refused; `either`: a mutation Go may read or refuse (a member of the
   * wrong type that Go reads as its zero value, an unknown member), which only must not crash.
   */
  readonly expect: "valid" | "invalid" | "either";
  readonly what: string;
}

/**
 * A `.sig` manifest (OCI, as containers/image writes it) mutated into JSON of any shape: members of the wrong
 * type, null, deleted, unknown, duplicated, deep nesting, huge numbers, truncation.
 */
export function mutateSigManifest(rng: Rng): SigManifestCase {
  const layer = () => ({
    mediaType: "application/vnd.dev.cosign.simplesigning.v1+json",
    digest: `sha256:${rng.text(64, "0123456789abcdef")}`,
    size: rng.int(2000),
    annotations: { [SIG]: "MEUCIQ==" },
  });
  const doc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: `sha256:${"a".repeat(64)}`,
      size: 233,
    },
    layers: Array.from({ length: 1 + rng.int(3) }, layer),
  };
  const wrong = [null, 1, -1, 1e300, "x", true, [], {}, [null], { a: [] }];
  const either = (what: string): SigManifestCase => ({
    bytes: enc.encode(JSON.stringify(doc)),
    expect: "either",
    what,
  });
  const kind = rng.int(8);
  if (kind === 0) {
    const key = rng.pick(Object.keys(doc));
    doc[key] = rng.pick(wrong);
    return either(`${key} replaced`);
  } else if (kind === 1) {
    const key = rng.pick(Object.keys(doc));
    delete doc[key];
    return either(`${key} deleted`);
  } else if (kind === 2) {
    const key = rng.pick(["mediaType", "digest", "size", "annotations"]);
    (doc.layers as Record<string, unknown>[])[0][key] = rng.pick(wrong);
    return either(`layer ${key} replaced`);
  } else if (kind === 3) {
    const key = rng.pick(["manifests", "fsLayers", "subject", "annotations", "Layers", "LAYERS"]);
    doc[key] = rng.pick(wrong);
    return either(`${key} added`);
  } else if (kind === 4) {
    let nested: unknown = "deep";
    for (let i = 0, n = 1 + rng.int(2000); i < n; i++) nested = [nested];
    doc.annotations = { a: nested };
    return {
      bytes: enc.encode(JSON.stringify(doc)),
      expect: "invalid",
      what: "annotation value nested in arrays",
    };
  } else if (kind === 5) {
    const text = JSON.stringify(doc);
    const cut = rng.int(text.length);
    return {
      bytes: enc.encode(text.slice(0, cut)),
      expect: "invalid",
      what: `cut at ${cut} of ${text.length}`,
    };
  } else if (kind === 6) {
    const text = JSON.stringify(doc);
    return {
      bytes: enc.encode(text.replace('"layers"', `"layers":${JSON.stringify(rng.pick(wrong))},"layers"`)),
      expect: "either",
      what: "layers duplicated",
    };
  }
  return { bytes: enc.encode(JSON.stringify(doc)), expect: "valid", what: "untouched (control)" };
}
