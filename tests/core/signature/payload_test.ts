/**
 * Simple-signing payloads: byte-level agreement with skopeo-made (containers/image 5.29.4) and cosign-made data,
 * and containers/image's strict parse with its error texts.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { AirlockError } from "../../../core/errors.ts";
import {
  FIXTURES_DIR,
  loadPeerSkopeoCases,
  peerSkopeoBlob,
  type PeerSkopeoSignatureLayer,
} from "../../testbed/fixtures.ts";
import {
  buildCosignPayload,
  buildSimpleSigningPayload,
  cosignClaimsMatch,
  DEFAULT_CREATOR,
  parseCosignClaims,
  parseSimpleSigningPayload,
  payloadAnnotations,
} from "../../../core/signature/payload.ts";
import { goJsonString } from "../../../core/encoding/go_json.ts";
import { VERSION } from "../../../core/version.ts";
import { assert, assertEquals, assertThrows } from "../../assert.ts";

const FIXTURES = FIXTURES_DIR;
const VECTORS = join(FIXTURES, "vectors", "containers-image");

const { cases } = await loadPeerSkopeoCases();
const allLayers: { id: string; layer: PeerSkopeoSignatureLayer }[] = cases.flatMap((c) =>
  c.signatureTags.flatMap((t) => t.layers.map((layer) => ({ id: c.id, layer })))
);

function sha256(bytes: Uint8Array): string {
  return "sha256:" + createHash("sha256").update(bytes).digest("hex");
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const bytes = (s: string) => new TextEncoder().encode(s);

function invalid(input: string, message: string): void {
  const err = assertThrows(() => parseSimpleSigningPayload(bytes(input)), AirlockError);
  assertEquals(err.message, message, `for ${input}`);
  assertEquals(err.code, "SIGNATURE_INVALID");
}

// A valid payload, built by hand from spec/hangar.md §5.4, to craft broken variants of.
const DIGEST = "sha256:b33f49aedaae75a483f0d675abd8d9b4b8ab44c0e75329e35dd1c2a5e10dbe6d";
const IDENTITY = '{"docker-reference":"registry.test:5000/a/single:v1"}';
const IMAGE = `{"docker-manifest-digest":"${DIGEST}"}`;
const TYPE = '"cosign container image signature"';
const CRITICAL = `{"identity":${IDENTITY},"image":${IMAGE},"type":${TYPE}}`;
const OPTIONAL = '{"creator":"containers/image 5.29.4","timestamp":1795292793}';

Deno.test("fixture layers: cases.json lists signature layers", () => {
  assert(allLayers.length >= 8, `only ${allLayers.length} layers`);
});

Deno.test("buildSimpleSigningPayload reproduces every skopeo-made payload byte for byte", () => {
  for (const { id, layer } of allLayers) {
    const stored = peerSkopeoBlob(layer.digest);
    const built = buildSimpleSigningPayload({
      dockerReference: layer.identity,
      manifestDigest: layer.payloadManifestDigest,
      creator: layer.payloadOptional.creator,
      timestamp: layer.payloadOptional.timestamp,
    });
    assertEquals(text(built), text(stored), `${id} layer ${layer.index}`);
    assertEquals(built.length, layer.size);
    assertEquals(sha256(built), layer.digest);
  }
});

Deno.test("parseSimpleSigningPayload accepts every skopeo-made payload and reads its fields", () => {
  for (const { id, layer } of allLayers) {
    const p = parseSimpleSigningPayload(peerSkopeoBlob(layer.digest));
    assertEquals(p.dockerReference, layer.identity, id);
    assertEquals(p.dockerManifestDigest, layer.payloadManifestDigest);
    assertEquals(p.creator, layer.payloadOptional.creator);
    assertEquals(p.timestamp, layer.payloadOptional.timestamp);
    assertEquals(p.optional, layer.payloadOptional);
    assertEquals(payloadAnnotations(p), {});
  }
});

Deno.test("buildSimpleSigningPayload: the spec's 367-byte example (docker.io digest reference)", () => {
  const hex = "a".repeat(64);
  const p = buildSimpleSigningPayload({
    dockerReference: `docker.io/library/nginx@sha256:${hex}`,
    manifestDigest: `sha256:${hex}`,
    creator: "containers/image 5.33.0",
    timestamp: 1700000000,
  });
  assertEquals(p.length, 367);
});

Deno.test("buildSimpleSigningPayload: defaults, annotations sorted into optional, reserved keys refused", () => {
  const before = Math.floor(Date.now() / 1000);
  const p = parseSimpleSigningPayload(
    buildSimpleSigningPayload({ dockerReference: "registry.test:5000/a/single:v1", manifestDigest: DIGEST }),
  );
  assertEquals(DEFAULT_CREATOR, `airlock ${VERSION}`);
  assertEquals(p.creator, DEFAULT_CREATOR);
  assert(p.timestamp !== undefined && p.timestamp >= before && p.timestamp <= before + 5);

  const withAnn = buildSimpleSigningPayload({
    dockerReference: "registry.test:5000/a/single:v1",
    manifestDigest: DIGEST,
    creator: "airlock 0.1.0",
    timestamp: 1700000000,
    annotations: { zeta: "z", env: "prod", "a.b/c": "x" },
  });
  assertEquals(
    text(withAnn),
    `{"critical":${CRITICAL},"optional":{"a.b/c":"x","creator":"airlock 0.1.0","env":"prod","timestamp":1700000000,"zeta":"z"}}`,
  );
  assertEquals(payloadAnnotations(parseSimpleSigningPayload(withAnn)), {
    "a.b/c": "x",
    env: "prod",
    zeta: "z",
  });

  const bare = buildSimpleSigningPayload({
    dockerReference: "registry.test:5000/a/single:v1",
    manifestDigest: DIGEST,
    creator: null,
    timestamp: null,
  });
  assertEquals(text(bare), `{"critical":${CRITICAL},"optional":{}}`);

  for (const k of ["creator", "timestamp"]) {
    const e = assertThrows(
      () =>
        buildSimpleSigningPayload({
          dockerReference: "r.test/x:1",
          manifestDigest: DIGEST,
          annotations: { [k]: "1" },
        }),
      AirlockError,
    );
    assertEquals(e.code, "INVALID_ARGUMENT");
  }
  const empty = assertThrows(
    () => buildSimpleSigningPayload({ dockerReference: "", manifestDigest: DIGEST }),
    AirlockError,
  );
  assertEquals(empty.message, "Unexpected empty signature content");
  assertThrows(
    () => buildSimpleSigningPayload({ dockerReference: "r/x:1", manifestDigest: "sha256:abc" }),
    AirlockError,
  );
  assertThrows(
    () => buildSimpleSigningPayload({ dockerReference: "r/x:1", manifestDigest: DIGEST, timestamp: 1.5 }),
    AirlockError,
  );
});

Deno.test("Go string escaping: <, >, &, U+2028, U+2029, control characters", () => {
  assertEquals(goJsonString("a<b>&c"), '"a\\u003cb\\u003e\\u0026c"');
  assertEquals(goJsonString("\u2028\u2029"), '"\\u2028\\u2029"');
  assertEquals(goJsonString('"\\\n\r\t\x01\x7f'), '"\\"\\\\\\n\\r\\t\\u0001\x7f"');
  assertEquals(goJsonString("é😀"), '"é😀"');
  const p = buildSimpleSigningPayload({
    dockerReference: "r.test/x:1",
    manifestDigest: DIGEST,
    creator: null,
    timestamp: null,
    annotations: { "<k>": "a&b" },
  });
  assert(text(p).endsWith('"optional":{"\\u003ck\\u003e":"a\\u0026b"}}'));
});

Deno.test("strict parse: crafted valid variants", () => {
  // cosign's "optional": null
  const p = parseSimpleSigningPayload(`{"critical":${CRITICAL},"optional":null}`);
  assertEquals(p.optional, null);
  assertEquals(p.creator, undefined);
  assertEquals(p.timestamp, undefined);
  // key order and whitespace do not matter; optional may carry anything else
  const q = parseSimpleSigningPayload(
    ` { "optional" : {"x":{"y":[1,2]},"timestamp":1e3} , "critical" : {"type":${TYPE},"identity":${IDENTITY},"image":${IMAGE}} } `,
  );
  assertEquals(q.timestamp, 1000);
  assertEquals(q.optional, { x: { y: [1, 2] }, timestamp: 1000 });
  // timestamp 5.0 equals an integer
  assertEquals(
    parseSimpleSigningPayload(`{"critical":${CRITICAL},"optional":{"timestamp":5.0}}`).timestamp,
    5,
  );
});

Deno.test("strict parse: containers/image error texts", () => {
  const top = (critical: string, optional: string) => `{"critical":${critical},"optional":${optional}}`;
  const crit = (identity: string, image: string, type: string) =>
    `{"identity":${identity},"image":${image},"type":${type}}`;

  // duplicate keys, at every level (also when spelled with an escape)
  invalid(`{"critical":${CRITICAL},"optional":null,"optional":${OPTIONAL}}`, 'Duplicate key "optional"');
  invalid(
    `{"critical":${CRITICAL},"critic\\u0061l":${CRITICAL},"optional":null}`,
    'Duplicate key "critical"',
  );
  invalid(
    top(`{"identity":${IDENTITY},"image":${IMAGE},"type":${TYPE},"type":${TYPE}}`, "null"),
    'Duplicate key "type"',
  );
  invalid(top(CRITICAL, '{"creator":"a","creator":"b"}'), 'Duplicate key "creator"');
  invalid(
    top(
      crit(IDENTITY, `{"docker-manifest-digest":"${DIGEST}","docker-manifest-digest":"${DIGEST}"}`, TYPE),
      "null",
    ),
    'Duplicate key "docker-manifest-digest"',
  );
  invalid(
    top(crit('{"docker-reference":"a","docker-reference":"b"}', IMAGE, TYPE), "null"),
    'Duplicate key "docker-reference"',
  );

  // extra keys
  invalid(`{"critical":${CRITICAL},"optional":null,"extra":1}`, 'Unknown key "extra"');
  invalid(
    top(`{"identity":${IDENTITY},"image":${IMAGE},"type":${TYPE},"x":true}`, "null"),
    'Unknown key "x"',
  );
  invalid(
    top(crit(IDENTITY, `{"docker-manifest-digest":"${DIGEST}","tag":"v1"}`, TYPE), "null"),
    'Unknown key "tag"',
  );
  invalid(
    top(crit('{"docker-reference":"a","Docker-Reference":"b"}', IMAGE, TYPE), "null"),
    'Unknown key "Docker-Reference"',
  );

  // missing keys
  invalid(`{"critical":${CRITICAL}}`, 'Key "optional" missing in a JSON object');
  invalid(`{"optional":null}`, 'Key "critical" missing in a JSON object');
  invalid(top(`{"image":${IMAGE},"type":${TYPE}}`, "null"), 'Key "identity" missing in a JSON object');
  invalid(top(`{"identity":${IDENTITY},"type":${TYPE}}`, "null"), 'Key "image" missing in a JSON object');
  invalid(top(`{"identity":${IDENTITY},"image":${IMAGE}}`, "null"), 'Key "type" missing in a JSON object');
  invalid(top(crit(IDENTITY, "{}", TYPE), "null"), 'Key "docker-manifest-digest" missing in a JSON object');
  invalid(top(crit("{}", IMAGE, TYPE), "null"), 'Key "docker-reference" missing in a JSON object');

  // wrong type
  invalid(
    top(crit(IDENTITY, IMAGE, '"atomic container signature"'), "null"),
    "Unrecognized signature type atomic container signature",
  );
  invalid(top(crit(IDENTITY, IMAGE, "null"), "null"), "Unrecognized signature type ");

  // timestamp not an integer
  invalid(top(CRITICAL, '{"timestamp":1795292793.5}'), "Field optional.timestamp is not an integer");
  invalid(top(CRITICAL, '{"timestamp":1e19}'), "Field optional.timestamp is not an integer");

  // bad digests (go-digest's reasons)
  const withDigest = (d: string) => top(crit(IDENTITY, `{"docker-manifest-digest":"${d}"}`, TYPE), "null");
  invalid(
    withDigest("sha256:abc"),
    'invalid docker-manifest-digest value "sha256:abc": invalid checksum digest length',
  );
  invalid(
    withDigest("nodigest"),
    'invalid docker-manifest-digest value "nodigest": invalid checksum digest format',
  );
  invalid(
    withDigest("sha256:" + "A".repeat(64)),
    `invalid docker-manifest-digest value "sha256:${"A".repeat(64)}": invalid checksum digest format`,
  );
  invalid(
    withDigest("md5:0123"),
    'invalid docker-manifest-digest value "md5:0123": unsupported digest algorithm',
  );
  invalid(withDigest(""), 'invalid docker-manifest-digest value "": invalid checksum digest format');

  // wrong JSON kinds
  invalid(top(CRITICAL, '{"creator":5}'), "json: cannot unmarshal number into Go value of type string");
  invalid(top(CRITICAL, '{"timestamp":"1"}'), "json: cannot unmarshal string into Go value of type float64");
  invalid(
    top(crit(IDENTITY, IMAGE, "[1]"), "null"),
    "json: cannot unmarshal array into Go value of type string",
  );
  invalid(top('"x"', "null"), 'JSON object expected, got "x"');
  invalid(top("null", "null"), "JSON object expected, got <nil>");
  invalid(top(CRITICAL, "5"), "JSON object expected, got 5");

  // syntax
  invalid(`{"critical":${CRITICAL},"optional":null} x`, "invalid character 'x' after top-level value");
  invalid(`{"critical":${CRITICAL},"optional":null`, "unexpected end of JSON input");
  invalid(`{"critical":${CRITICAL},"optional":nul}`, "invalid character '}' in literal null (expecting 'l')");
});

Deno.test("strict parse: checks run in containers/image's order", () => {
  // optional is checked before critical; critical before image; image before identity
  invalid(`{"critical":{"x":1},"optional":{"timestamp":0.5}}`, "Field optional.timestamp is not an integer");
  invalid(
    `{"critical":{"identity":{"x":1},"image":{"docker-manifest-digest":"bad"},"type":"t"},"optional":null}`,
    "Unrecognized signature type t",
  );
  invalid(
    `{"critical":{"identity":{"x":1},"image":{"docker-manifest-digest":"bad"},"type":${TYPE}},"optional":null}`,
    'invalid docker-manifest-digest value "bad": invalid checksum digest format',
  );
});

/** `\x00sigstore-json\n` + JSON {mimeType, payload, annotations} (containers/image's on-disk signature format). */
function readSigstoreJson(
  path: string,
): { mimeType: string; payload: Uint8Array; annotations: Record<string, string> } {
  const raw = Deno.readFileSync(path);
  const prefix = "\x00sigstore-json\n";
  assertEquals(text(raw.subarray(0, prefix.length)), prefix);
  const doc = JSON.parse(text(raw.subarray(prefix.length)));
  const bin = atob(doc.payload);
  return {
    mimeType: doc.mimeType,
    payload: Uint8Array.from(bin, (c) => c.charCodeAt(0)),
    annotations: doc.annotations,
  };
}

Deno.test("containers/image vectors: cosign-made payloads parse strictly and name their manifest", () => {
  const names = [...Deno.readDirSync(VECTORS)].map((e) => e.name).filter((n) => n.endsWith("-signature-1"))
    .sort();
  assertEquals(names.length, 3);
  for (const name of names) {
    const sig = readSigstoreJson(join(VECTORS, name));
    assertEquals(sig.mimeType, "application/vnd.dev.cosign.simplesigning.v1+json");
    const manifest = Deno.readFileSync(join(VECTORS, name.replace(/-signature-1$/, "-manifest.json")));
    const p = parseSimpleSigningPayload(sig.payload);
    assertEquals(p.optional, null, name);
    assertEquals(p.dockerManifestDigest, sha256(manifest), name);
    assert(text(sig.payload).endsWith('"optional":null}'));

    // cosign's own form, rebuilt from the fields
    const rebuilt = buildCosignPayload(p.dockerReference, p.dockerManifestDigest);
    assertEquals(text(rebuilt), text(sig.payload), name);

    // cosign's lenient reading agrees
    const claims = parseCosignClaims(sig.payload);
    assertEquals(claims.dockerManifestDigest, sha256(manifest));
    assertEquals(claims.dockerReference, p.dockerReference);
    assertEquals(claims.optional, null);
    assert(cosignClaimsMatch(claims, sha256(manifest)));
    assert(!cosignClaimsMatch(claims, sha256(manifest), { env: "prod" }));
    assert(!cosignClaimsMatch(claims, DIGEST));
  }
});

Deno.test("buildCosignPayload: annotations as a sorted map, none as null", () => {
  const base = `{"critical":${CRITICAL},"optional":`;
  assertEquals(text(buildCosignPayload("registry.test:5000/a/single:v1", DIGEST)), base + "null}");
  assertEquals(text(buildCosignPayload("registry.test:5000/a/single:v1", DIGEST, {})), base + "null}");
  assertEquals(
    text(buildCosignPayload("registry.test:5000/a/single:v1", DIGEST, { z: "1", a: "<2>" })),
    base + '{"a":"\\u003c2\\u003e","z":"1"}}',
  );
});

Deno.test("parseCosignClaims is lenient where cosign is; the strict parse is not", () => {
  const loose =
    `{"critical":{"identity":{"docker-reference":"x"},"image":{"docker-manifest-digest":"sha256:old"},"Type":"anything","extra":1},` +
    `"critical":{"image":{"Docker-Manifest-Digest":"${DIGEST}"}},"optional":{"env":"prod","n":1},"more":[]}`;
  const c = parseCosignClaims(loose);
  assertEquals(c.dockerManifestDigest, DIGEST); // later duplicate wins, case-insensitive match
  assertEquals(c.dockerReference, "x"); // kept from the first "critical" (Go decodes into the same struct)
  assertEquals(c.type, "anything");
  assert(cosignClaimsMatch(c, DIGEST, { env: "prod" }));
  assert(!cosignClaimsMatch(c, DIGEST, { n: "1" })); // non-string values never match
  assertThrows(() => parseSimpleSigningPayload(loose), AirlockError, 'Duplicate key "critical"');
  const e = assertThrows(() => parseCosignClaims('{"critical":{"type":5}}'), AirlockError);
  assertEquals(e.code, "SIGNATURE_INVALID");
  assertThrows(() => parseCosignClaims("{"), AirlockError, "unexpected end of JSON input");
});
