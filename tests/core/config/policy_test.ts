/**
 * containers-policy.json: strict parsing, scope resolution, identity matching and requirement evaluation.
 * Expected values come from containers/image (its error texts, and the match tables of
 * `signature/policy_reference_match_test.go`) and containers-policy.json(5).
 */
import { join } from "node:path";
import { hangarValidatePolicy, parsePolicy } from "../../../core/config/policy_config.ts";
import {
  PolicyEvaluator,
  type PolicyImage,
  type UntrustedSignature,
} from "../../../core/config/policy_eval.ts";
import { matchesDockerReference } from "../../../core/config/policy_reference_match.ts";
import { requirementsFor } from "../../../core/config/policy_scopes.ts";
import type {
  Policy,
  PolicyReferenceMatch,
  SigstoreSignedRequirement,
} from "../../../core/config/policy_types.ts";
import { AirlockError } from "../../../core/errors.ts";
import { parseReference, type Reference } from "../../../core/reference.ts";
import { base64Encode } from "../../../core/encoding/base64.ts";
import { ecdsaDerToRaw, ecdsaRawToDer } from "../../../core/signature/public_key.ts";
import { base64Decode } from "../../../core/encoding/base64.ts";
import { encodePem } from "../../../core/encoding/pem.ts";
import { assert, assertEquals, assertThrows } from "../../assert.ts";

const enc = new TextEncoder();
const SIMPLE = "application/vnd.dev.cosign.simplesigning.v1+json";
const D1 = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const D2 = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

function parseError(text: string): string {
  return assertThrows(() => parsePolicy(text), AirlockError).message;
}

Deno.test("policy: parses every requirement type and identity type", () => {
  const keyData = base64Encode(enc.encode("-----BEGIN PUBLIC KEY-----\n...\n"));
  const p = parsePolicy(JSON.stringify({
    default: [{ type: "reject" }],
    transports: {
      docker: {
        "": [{ type: "insecureAcceptAnything" }],
        "a.io/x": [{ type: "sigstoreSigned", keyPath: "/k.pub" }],
        "a.io/e": [{
          type: "sigstoreSigned",
          keyPaths: ["/a.pub", "/b.pub"],
          signedIdentity: { type: "matchExact" },
        }],
        "a.io/f": [{ type: "sigstoreSigned", keyData, signedIdentity: { type: "matchRepository" } }],
        "a.io/g": [{
          type: "sigstoreSigned",
          keyDatas: [keyData, keyData],
          signedIdentity: { type: "exactReference", dockerReference: "a.io/g:1" },
        }],
        "a.io/h": [{
          type: "sigstoreSigned",
          keyPath: "/k.pub",
          signedIdentity: { type: "exactRepository", dockerRepository: "a.io/other" },
        }],
        "a.io/i": [{
          type: "sigstoreSigned",
          keyPath: "/k.pub",
          signedIdentity: { type: "remapIdentity", prefix: "mirror.io", signedPrefix: "a.io" },
        }],
        "a.io/j": [{ type: "signedBy", keyType: "GPGKeys", keyPath: "/k.gpg" }],
        "a.io/k": [{ type: "signedBaseLayer", baseLayerIdentity: { type: "matchRepoDigestOrExact" } }],
        "a.io/l": [{
          type: "sigstoreSigned",
          fulcio: { caPath: "/ca.pem", oidcIssuer: "https://issuer", subjectEmail: "a@b" },
          rekorPublicKeyPath: "/rekor.pub",
        }],
        "a.io/m": [{
          type: "sigstoreSigned",
          pki: { caRootsPath: "/roots.pem", subjectHostname: "h" },
        }],
      },
      "docker-daemon": { "": [{ type: "insecureAcceptAnything" }] },
    },
  }));
  assertEquals(p.default, [{ type: "reject" }]);
  const d = p.transports.docker;
  // A missing signedIdentity defaults to matchRepoDigestOrExact.
  assertEquals(d["a.io/x"], [{
    type: "sigstoreSigned",
    keyPath: "/k.pub",
    signedIdentity: { type: "matchRepoDigestOrExact" },
  }]);
  assertEquals(
    (d["a.io/f"][0] as SigstoreSignedRequirement).keyData,
    enc.encode("-----BEGIN PUBLIC KEY-----\n...\n"),
  );
  assertEquals((d["a.io/g"][0] as SigstoreSignedRequirement).keyDatas?.length, 2);
  assertEquals((d["a.io/i"][0] as SigstoreSignedRequirement).signedIdentity, {
    type: "remapIdentity",
    prefix: "mirror.io",
    signedPrefix: "a.io",
  });
  assertEquals(d["a.io/j"][0].type, "signedBy");
  assertEquals(d["a.io/k"][0].type, "signedBaseLayer");
  assertEquals(Object.keys(p.transports), ["docker", "docker-daemon"]);
});

Deno.test("policy: strict parse errors carry containers/image's texts", () => {
  assertEquals(parseError(`{"transports":{}}`), "Default policy is missing");
  assertEquals(parseError(`{"default":[{"type":"reject"}],"extra":1}`), `Unknown key "extra"`);
  assertEquals(
    parseError(`{"default":[],"transports":{}}`),
    "List of verification policy requirements must not be empty",
  );
  assertEquals(
    parseError(`{"default":[{"type":"reject"}],"default":[{"type":"reject"}]}`),
    `Duplicate key "default"`,
  );
  assertEquals(parseError(`{"default":[{"type":"reject","x":1}]}`), `Unknown key "x"`);
  assertEquals(parseError(`{"default":[{"type":"bogus"}]}`), `Unknown policy requirement type "bogus"`);
  assertEquals(
    parseError(`{"default":[{"type":"sigstoreSigned","keyPath":"/a","keyData":"YQ=="}]}`),
    "exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, and pki must be specified",
  );
  assertEquals(
    parseError(`{"default":[{"type":"sigstoreSigned"}]}`),
    "exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, and pki must be specified",
  );
  assertEquals(
    parseError(`{"default":[{"type":"sigstoreSigned","keyPaths":[]}]}`),
    `"keyPaths" contains no entries`,
  );
  assertEquals(
    parseError(`{"default":[{"type":"sigstoreSigned","keyPath":"/a","signedIdentity":{"type":"nope"}}]}`),
    `Unknown policy reference match type "nope"`,
  );
  assertEquals(
    parseError(
      `{"default":[{"type":"sigstoreSigned","keyPath":"/a","signedIdentity":{"type":"exactReference","dockerReference":"busybox"}}]}`,
    ),
    `dockerReference "busybox" contains neither a tag nor digest`,
  );
  assertEquals(
    parseError(
      `{"default":[{"type":"sigstoreSigned","keyPath":"/a","signedIdentity":{"type":"exactRepository"}}]}`,
    ),
    `Key "dockerRepository" missing in a JSON object`,
  );
  assertEquals(
    parseError(
      `{"default":[{"type":"sigstoreSigned","keyPath":"/a","signedIdentity":{"type":"remapIdentity","prefix":"a b","signedPrefix":"x.io"}}]}`,
    ),
    `prefix "a b" is not valid`,
  );
  assertEquals(
    parseError(`{"default":[{"type":"signedBy","keyType":"GPGKeys"}]}`),
    "Exactly one of keyPath, keyPaths and keyData must be specified, none of them present",
  );
  assertEquals(
    parseError(`{"default":[{"type":"signedBy","keyType":"Nope","keyPath":"/k"}]}`),
    `Unrecognized keyType value "Nope"`,
  );
  assertEquals(
    parseError(
      `{"default":[{"type":"sigstoreSigned","fulcio":{"caPath":"/c","oidcIssuer":"i","subjectEmail":"e"}}]}`,
    ),
    "At least one of rekorPublickeyPath, rekorPublicKeyPaths, rekorPublickeyData and rekorPublicKeyDatas must be specified if fulcio is used",
  );
  assertEquals(parseError(`[]`), "JSON object expected, got 91");
  assertEquals(
    parseError(`{"default":[{"type":"reject"}]} x`),
    "invalid character 'x' after top-level value",
  );
  assertEquals(
    parseError(`{"default":[{"type":"sigstoreSigned","keyPath":1}]}`),
    "json: cannot unmarshal number into Go value of type string",
  );
});

Deno.test("policy: an explicit null is not an absent key; policies containers/image refuses to load fail", () => {
  // Each case was refused by skopeo 1.14.5 (containers/image 5.29.4) with `Error loading trust policy`;
  // the texts it printed are in tests/fixtures/oracle-skopeo/policies/verdicts.json.
  const ok = `[{"type":"insecureAcceptAnything"}]`;
  assert(parseError(`{"default":${ok},"transports":null}`).startsWith("JSON object expected, got "));
  assert(
    parseError(`{"default":${ok},"transports":{"docker":null}}`).startsWith("JSON object expected, got "),
  );
  assert(parseError(`{"default":${ok},"transports":{"foo":null}}`).startsWith("JSON object expected, got "));
  assertEquals(
    parseError(`{"default":${ok},"transports":{"docker":{"x.io":null}}}`),
    "List of verification policy requirements must not be empty",
  );
  assertEquals(parseError(`{"default":null}`), "List of verification policy requirements must not be empty");
  assertEquals(
    parseError(`{"default":[{"type":"sigstoreSigned","keyPath":"/k.pub","signedIdentity":null}]}`),
    `Unknown policy reference match type ""`,
  );
  assertEquals(
    parseError(
      `{"default":${ok},"transports":{"docker":{"x.io":[{"type":"signedBy","keyType":"GPGKeys",` +
        `"keyPath":"/x","signedIdentity":null}]}}}`,
    ),
    `Unknown policy reference match type ""`,
  );
  assert(
    parseError(`{"default":[{"type":"sigstoreSigned","fulcio":null}]}`).startsWith(
      "JSON object expected, got ",
    ),
  );
  // A UTF-8 byte order mark: Go's decoder does not skip it.
  const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...enc.encode(`{"default":${ok}}`)]);
  assertEquals(
    assertThrows(() => parsePolicy(bom), AirlockError).message,
    "invalid character 'ï' looking for beginning of value",
  );
});

Deno.test("policy: scopes a transport refuses are unknown keys (containers/image ValidatePolicyConfigurationScope)", () => {
  const ok = `[{"type":"insecureAcceptAnything"}]`;
  const policy = (transport: string, scope: string) =>
    `{"default":${ok},"transports":{${JSON.stringify(transport)}:{${
      JSON.stringify(scope)
    }:[{"type":"reject"}]}}}`;
  const refused: [string, string][] = [
    ["oci", "rel/path"],
    ["oci", "/"],
    ["oci", "/a/../b"],
    ["oci-archive", "a.tar"],
    ["dir", "rel"],
    ["dir", "/a/"],
    ["sif", "x.sif"],
    ["docker-archive", "/x.tar"],
    ["tarball", "/x.tar"],
    ["docker-daemon", "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"],
    ["atomic", "a/b/c/d"],
    ["containers-storage", "x"],
    ["containers-storage", "[relative]busybox"],
    ["containers-storage", "[/var/lib/c]busybox@nope"],
  ];
  for (const [transport, scope] of refused) {
    assertEquals(
      parseError(policy(transport, scope)),
      `Unknown key ${JSON.stringify(scope)}`,
      `${transport} ${scope}`,
    );
  }
  const accepted: [string, string][] = [
    ["oci", "/var/images"],
    ["oci", "/var/images:tag"],
    ["dir", "/a/b"],
    ["docker", "anything at all"],
    ["docker-daemon", "busybox:latest"],
    ["atomic", "host/ns/stream:tag"],
    ["containers-storage", "[overlay@/var/lib/containers/storage]docker.io/library/busybox:1"],
    [
      "containers-storage",
      "[/var/lib/c]busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    ],
    ["ostree", "whatever"], // a stub transport in skopeo's build: not validated
    ["no-such-transport", "x"],
    ["oci", ""],
    ["tarball", ""],
  ];
  for (const [transport, scope] of accepted) {
    const p = parsePolicy(policy(transport, scope));
    assertEquals(Object.keys(p.transports[transport]), [scope], `${transport} ${scope}`);
  }
});

Deno.test("policy: scope resolution, most specific first, then transport default, then default", () => {
  const R = (
    n: string,
  ) => [{ type: "sigstoreSigned" as const, keyPath: n, signedIdentity: { type: "matchExact" as const } }];
  const scopes: Record<string, ReturnType<typeof R>> = {
    "reg.example.com:5000/team/app:v1": R("identity"),
    "reg.example.com:5000/team/app": R("repo"),
    "reg.example.com:5000/team": R("namespace"),
    "reg.example.com:5000": R("host"),
    "*.example.com": R("wild1"),
    "*.com": R("wild2"),
    "": R("transport"),
  };
  const order = [
    "reg.example.com:5000/team/app:v1",
    "reg.example.com:5000/team/app",
    "reg.example.com:5000/team",
    "reg.example.com:5000",
    "*.example.com",
    "*.com",
    "",
  ];
  const ref = parseReference("reg.example.com:5000/team/app:v1");
  for (let i = 0; i < order.length; i++) {
    const docker: Record<string, ReturnType<typeof R>> = {};
    for (const k of order.slice(i)) docker[k] = scopes[k];
    const policy: Policy = { default: [{ type: "reject" }], transports: { docker } };
    const got = requirementsFor(policy, ref);
    assertEquals(got.scope, `docker ${JSON.stringify(order[i])}`);
    assertEquals(got.requirements, scopes[order[i]]);
  }
  // Nothing in the transport matches: the global default.
  const none: Policy = { default: [{ type: "reject" }], transports: { docker: { "other.io": R("x") } } };
  assertEquals(requirementsFor(none, ref), { scope: "default", requirements: [{ type: "reject" }] });
  // Another transport's scopes never apply to docker references.
  const other: Policy = { default: [{ type: "reject" }], transports: { "docker-daemon": { "": R("x") } } };
  assertEquals(requirementsFor(other, ref).scope, "default");
  // A digest reference is looked up by host/repo@digest.
  const byDigest: Policy = {
    default: [{ type: "reject" }],
    transports: { docker: { [`a.io/b@${D1}`]: R("d") } },
  };
  assertEquals(requirementsFor(byDigest, parseReference(`a.io/b@${D1}`)).scope, `docker "a.io/b@${D1}"`);
});

// Tables from containers/image signature/policy_reference_match_test.go (image reference, signature reference).
const EXACT: [string, string, boolean][] = [
  ["busybox:latest", "busybox:latest", true],
  ["library/busybox:latest", "busybox:latest", true],
  ["docker.io/library/busybox:latest", "busybox:latest", true],
  ["busybox:latest", "busybox:notlatest", false],
  ["busybox:latest", "busybox@" + D1.slice(0), false],
  ["busybox", "busybox:latest", false],
  [`busybox:latest@${D1}`, `busybox:latest@${D1}`, true],
  [`busybox:latest@${D1}`, "busybox:latest", false],
  ["busybox:latest", "INVALID", false],
];
const REPO_DIGEST_OR_EXACT: [string, string, boolean][] = [
  ["busybox:latest", "busybox:latest", true],
  ["busybox:latest", "busybox:notlatest", false],
  ["busybox", "busybox:latest", false],
  ["busybox:latest", "busybox", false],
  [`busybox@${D1}`, "busybox", false],
  ["busybox:latest", `busybox@${D1}`, false],
  [`busybox@${D1}`, "busybox:latest", true],
  [`busybox@${D1}`, `busybox@${D2}`, true],
  [`busybox@${D1}`, "notbusybox:latest", false],
  [`busybox:latest@${D1}`, "busybox:latest", false],
];
const REPOSITORY: [string, string, boolean][] = [
  ["busybox:latest", "busybox:notlatest", true],
  ["busybox", "busybox:notlatest", true],
  [`busybox@${D1}`, "busybox", true],
  ["busybox:latest", "notbusybox:latest", false],
  ["hostname/library/busybox:latest", "busybox:notlatest", false],
];

function img(s: string): Reference {
  return parseReference(s);
}

Deno.test("policy: matchExact, matchRepoDigestOrExact, matchRepository (containers/image tables)", () => {
  for (const [i, s, want] of EXACT) {
    assertEquals(matchesDockerReference({ type: "matchExact" }, img(i), s), want, `matchExact ${i} ${s}`);
  }
  for (const [i, s, want] of REPO_DIGEST_OR_EXACT) {
    assertEquals(
      matchesDockerReference({ type: "matchRepoDigestOrExact" }, img(i), s),
      want,
      `mrdoe ${i} ${s}`,
    );
  }
  for (const [i, s, want] of REPOSITORY) {
    assertEquals(matchesDockerReference({ type: "matchRepository" }, img(i), s), want, `repo ${i} ${s}`);
  }
});

Deno.test("policy: exactReference and exactRepository ignore the image; remapIdentity rewrites its prefix", () => {
  const anyImage = img("unrelated.io/x:1");
  const er: PolicyReferenceMatch = { type: "exactReference", dockerReference: "busybox:latest" };
  assertEquals(matchesDockerReference(er, anyImage, "docker.io/library/busybox:latest"), true);
  assertEquals(matchesDockerReference(er, anyImage, "busybox:other"), false);
  assertEquals(matchesDockerReference(er, anyImage, "busybox"), false);
  const erepo: PolicyReferenceMatch = { type: "exactRepository", dockerRepository: "busybox" };
  assertEquals(matchesDockerReference(erepo, anyImage, "busybox:any"), true);
  assertEquals(matchesDockerReference(erepo, anyImage, "busybox"), true); // name-only (cosign) identities pass
  assertEquals(matchesDockerReference(erepo, anyImage, "other:any"), false);

  const remap: PolicyReferenceMatch = {
    type: "remapIdentity",
    prefix: "mirror.example",
    signedPrefix: "vendor.example",
  };
  assertEquals(
    matchesDockerReference(remap, img("mirror.example/ns/image:tag"), "vendor.example/ns/image:tag"),
    true,
  );
  assertEquals(
    matchesDockerReference(remap, img("mirror.example/ns/image:tag"), "mirror.example/ns/image:tag"),
    false,
  );
  // Prefix matching is by whole components: mirror.example:5000 does not start with mirror.example.
  assertEquals(
    matchesDockerReference(remap, img("mirror.example:5000/ns/image:tag"), "vendor.example/ns/image:tag"),
    false,
  );
  // Not matching the prefix: compared unchanged (matchRepoDigestOrExact).
  assertEquals(
    matchesDockerReference(remap, img("other.example/ns/image:tag"), "other.example/ns/image:tag"),
    true,
  );
  // Digest image references compare repositories after the rewrite.
  assertEquals(
    matchesDockerReference(remap, img(`mirror.example/ns/image@${D1}`), "vendor.example/ns/image:v9"),
    true,
  );
  const ns: PolicyReferenceMatch = {
    type: "remapIdentity",
    prefix: "mirror.example/ns",
    signedPrefix: "vendor.example/vendor-ns",
  };
  assertEquals(
    matchesDockerReference(ns, img("mirror.example/ns/image:tag"), "vendor.example/vendor-ns/image:tag"),
    true,
  );
  assertEquals(
    matchesDockerReference(ns, img("mirror.example/ns2/image:tag"), "vendor.example/vendor-ns2/image:tag"),
    false,
  );
});

// ---------------------------------------------------------------------------------------------------------------
// Evaluation with a real key
// ---------------------------------------------------------------------------------------------------------------

interface TestKey {
  pem: string;
  sign(payload: Uint8Array): Promise<Uint8Array>;
}

async function newKey(): Promise<TestKey> {
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, [
    "sign",
    "verify",
  ]);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", pair.publicKey));
  return {
    pem: encodePem("PUBLIC KEY", spki),
    sign: async (payload) =>
      ecdsaRawToDer(
        new Uint8Array(
          await crypto.subtle.sign(
            { name: "ECDSA", hash: "SHA-256" },
            pair.privateKey,
            payload as Uint8Array<ArrayBuffer>,
          ),
        ),
      ),
  };
}

function b64(s: string): Uint8Array {
  return base64Decode(s)!;
}

function payloadFor(identity: string, digest: string): Uint8Array {
  return enc.encode(
    `{"critical":{"identity":{"docker-reference":"${identity}"},"image":{"docker-manifest-digest":"${digest}"},"type":"cosign container image signature"},"optional":null}`,
  );
}

async function sigstore(key: TestKey, payload: Uint8Array, mimeType = SIMPLE): Promise<UntrustedSignature> {
  return {
    kind: "sigstore",
    mimeType,
    payload,
    annotations: { "dev.cosignproject.cosign/signature": base64Encode(await key.sign(payload)) },
  };
}

function image(ref: string, digest: string, sigs: UntrustedSignature[]): PolicyImage {
  let reads = 0;
  return {
    reference: parseReference(ref),
    manifestDigest: digest,
    signatures: () => {
      reads++;
      if (reads > 1) throw new Error("signatures read twice");
      return Promise.resolve(sigs);
    },
  };
}

async function decide(policy: Policy, im: PolicyImage): Promise<string> {
  const d = await new PolicyEvaluator(policy).isRunningImageAllowed(im);
  return d.allowed ? "allowed" : d.error.message;
}

Deno.test("policy evaluation: insecureAcceptAnything, reject, signedBy, signedBaseLayer, all requirements must pass", async () => {
  const im = image("a.io/b:v1", D1, []);
  assertEquals(
    await decide({ default: [{ type: "insecureAcceptAnything" }], transports: {} }, im),
    "allowed",
  );
  assertEquals(
    await decide({ default: [{ type: "reject" }], transports: {} }, image("a.io/b:v1", D1, [])),
    "Running image docker://a.io/b:v1 is rejected by policy.",
  );
  const signedBy = parsePolicy(`{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k"}]}`);
  assert((await decide(signedBy, image("a.io/b:v1", D1, []))).includes(`"signedBy"`));
  const base = parsePolicy(
    `{"default":[{"type":"signedBaseLayer","baseLayerIdentity":{"type":"matchExact"}}]}`,
  );
  assertEquals(await decide(base, image("a.io/b:v1", D1, [])), "signedBaseLayer not implemented yet!");
  // Two requirements: accept-anything then reject → rejected.
  assertEquals(
    await decide(
      { default: [{ type: "insecureAcceptAnything" }, { type: "reject" }], transports: {} },
      image("a.io/b:v1", D1, []),
    ),
    "Running image docker://a.io/b:v1 is rejected by policy.",
  );
  // An empty scope list (only a Policy built in code can hold one; policy.json's null is refused at load) is
  // refused at evaluation.
  assertEquals(
    await decide(
      { default: [{ type: "insecureAcceptAnything" }], transports: { docker: { "": [] } } },
      image("a.io/b:v1", D1, []),
    ),
    "List of verification policy requirements must not be empty",
  );
  // Keyless is refused clearly, not passed.
  const keyless = parsePolicy(
    `{"default":[{"type":"sigstoreSigned","fulcio":{"caPath":"/c","oidcIssuer":"i","subjectEmail":"e"},"rekorPublicKeyPath":"/r"}]}`,
  );
  const k = await newKey();
  const msg = await decide(keyless, image("a.io/b:v1", D1, [await sigstore(k, payloadFor("a.io/b:v1", D1))]));
  assert(msg.includes("not supported yet"), msg);
});

Deno.test("policy evaluation: sigstoreSigned decision procedure and texts", async () => {
  const alice = await newKey();
  const bob = await newKey();
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, "alice.pub"), alice.pem);
    await Deno.writeTextFile(join(dir, "bob.pub"), bob.pem);
    await Deno.writeTextFile(
      join(dir, "bad.pub"),
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    const byAlice = hangarValidatePolicy({ keyPath: join(dir, "alice.pub") });
    const good = await sigstore(alice, payloadFor("a.io/b:v1", D1));
    assertEquals(await decide(byAlice, image("a.io/b:v1", D1, [good])), "allowed");
    // Nothing at all / only other things.
    assertEquals(
      await decide(byAlice, image("a.io/b:v1", D1, [])),
      "A signature was required, but no signature exists",
    );
    assertEquals(
      await decide(
        byAlice,
        image("a.io/b:v1", D1, [
          { kind: "simple-signing" },
          await sigstore(alice, payloadFor("a.io/b:v1", D1), "application/vnd.dsse.envelope.v1+json"),
        ]),
      ),
      "A signature was required, but no signature exists (1 non-sigstore signatures, 1 sigstore non-signature attachments)",
    );
    // Wrong key, one and two signatures.
    const byBob = await sigstore(bob, payloadFor("a.io/b:v1", D1));
    const crypto1 =
      "cryptographic signature verification failed: invalid signature when validating ASN.1 encoded signature";
    assertEquals(await decide(byAlice, image("a.io/b:v1", D1, [byBob])), crypto1);
    assertEquals(
      await decide(byAlice, image("a.io/b:v1", D1, [byBob, byBob])),
      `None of the signatures were accepted, reasons: ${crypto1}; ${crypto1}`,
    );
    // The first accepted signature decides, wherever it is.
    assertEquals(await decide(byAlice, image("a.io/b:v1", D1, [byBob, good])), "allowed");
    // keyPaths: any of the keys; failures of every key are listed.
    const both = parsePolicy(JSON.stringify({
      default: [{ type: "sigstoreSigned", keyPaths: [join(dir, "alice.pub"), join(dir, "bob.pub")] }],
    }));
    assertEquals(await decide(both, image("a.io/b:v1", D1, [byBob])), "allowed");
    const mallory = await newKey();
    assertEquals(
      await decide(both, image("a.io/b:v1", D1, [await sigstore(mallory, payloadFor("a.io/b:v1", D1))])),
      `cryptographic signature verification failed: invalid signature when validating ASN.1 encoded signature, invalid signature when validating ASN.1 encoded signature`,
    );
    // keyData (what --key uses).
    assertEquals(
      await decide(hangarValidatePolicy({ keyData: enc.encode(bob.pem) }), image("a.io/b:v1", D1, [byBob])),
      "allowed",
    );
    // Key problems are reported per signature, with containers/image's texts.
    assertEquals(
      await decide(hangarValidatePolicy({ keyPath: join(dir, "bad.pub") }), image("a.io/b:v1", D1, [good])),
      "parsing public key 1: unknown Public key PEM file type: CERTIFICATE. Are you passing the correct public key?",
    );
    assertEquals(
      await decide(hangarValidatePolicy({ keyPath: join(dir, "none.pub") }), image("a.io/b:v1", D1, [good])),
      `open ${join(dir, "none.pub")}: no such file or directory`,
    );
    // No key is read when there is nothing to check.
    assertEquals(
      await decide(hangarValidatePolicy({ keyPath: join(dir, "none.pub") }), image("a.io/b:v1", D1, [])),
      "A signature was required, but no signature exists",
    );
    // Annotation problems.
    assertEquals(
      await decide(byAlice, image("a.io/b:v1", D1, [{ ...good, annotations: {} } as UntrustedSignature])),
      "missing dev.cosignproject.cosign/signature annotation",
    );
    assertEquals(
      await decide(
        byAlice,
        image("a.io/b:v1", D1, [{
          ...good,
          annotations: { "dev.cosignproject.cosign/signature": "not*base64" },
        } as UntrustedSignature]),
      ),
      "base64 decoding: illegal base64 data at input byte 3",
    );
    // The crypto check comes before the payload parse: garbage signed by someone else is a crypto failure.
    const garbage = enc.encode(`{"critical":1,"critical":2}`);
    assertEquals(await decide(byAlice, image("a.io/b:v1", D1, [await sigstore(bob, garbage)])), crypto1);
    // …and the strict parse applies to validly signed payloads.
    assertEquals(
      await decide(byAlice, image("a.io/b:v1", D1, [await sigstore(alice, garbage)])),
      `Duplicate key "critical"`,
    );
    const extra = enc.encode(
      `{"critical":{"identity":{"docker-reference":"a.io/b:v1"},"image":{"docker-manifest-digest":"${D1}"},"type":"cosign container image signature"},"optional":null,"extra":1}`,
    );
    assertEquals(
      await decide(byAlice, image("a.io/b:v1", D1, [await sigstore(alice, extra)])),
      `Unknown key "extra"`,
    );
    // Digest, then identity.
    assertEquals(
      await decide(byAlice, image("a.io/b:v1", D1, [await sigstore(alice, payloadFor("a.io/c:v1", D2))])),
      `Signature for digest ${D2} does not match`,
    );
    assertEquals(
      await decide(byAlice, image("a.io/b:v1", D1, [await sigstore(alice, payloadFor("a.io/b:v2", D1))])),
      `Signature for identity "a.io/b:v2" is not accepted`,
    );
    // A payload naming the manifest's digest with another algorithm (here: the true sha512 of the bytes) does not
    // match: containers/image 5.29 (manifest.MatchesDigest) and cosign compare sha256 only.
    const bytes = enc.encode("{}");
    const sha512 = "sha512:" +
      Array.from(
        new Uint8Array(await crypto.subtle.digest("SHA-512", bytes)),
        (b) => b.toString(16).padStart(2, "0"),
      ).join("");
    const sha256 = "sha256:" +
      Array.from(
        new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
        (b) => b.toString(16).padStart(2, "0"),
      ).join("");
    assertEquals(
      await decide(
        byAlice,
        image("a.io/b:v1", sha256, [await sigstore(alice, payloadFor("a.io/b:v1", sha512))]),
      ),
      `Signature for digest ${sha512} does not match`,
    );
    assertEquals(
      await decide(
        byAlice,
        image("a.io/b:v1", sha256, [await sigstore(alice, payloadFor("a.io/b:v1", sha256))]),
      ),
      "allowed",
    );
    // An ECDSA signature as raw r‖s instead of ASN.1 DER: the bytes are right, the encoding is refused.
    const der = await sigstore(alice, payloadFor("a.io/b:v1", D1)) as Extract<
      UntrustedSignature,
      { kind: "sigstore" }
    >;
    const raw = ecdsaDerToRaw(b64(der.annotations["dev.cosignproject.cosign/signature"]), 32)!;
    assertEquals(raw.length, 64);
    assertEquals(
      await decide(
        byAlice,
        image("a.io/b:v1", D1, [{
          ...der,
          annotations: { "dev.cosignproject.cosign/signature": base64Encode(raw) },
        } as UntrustedSignature]),
      ),
      "cryptographic signature verification failed: invalid signature when validating ASN.1 encoded signature",
    );
    assertEquals(await decide(byAlice, image("a.io/b:v1", D1, [der])), "allowed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("policy: hangarValidatePolicy builds hangar's in-memory policy", () => {
  const p = hangarValidatePolicy({ keyPath: "/k.pub" });
  const r = { type: "sigstoreSigned", keyPath: "/k.pub", signedIdentity: { type: "matchRepoDigestOrExact" } };
  assertEquals(p, { default: [r], transports: { docker: { "": [r] } } });
  const e = hangarValidatePolicy({ keyPath: "/k.pub", exactRepository: "nginx" });
  assertEquals(e.default[0], {
    type: "sigstoreSigned",
    keyPath: "/k.pub",
    signedIdentity: { type: "exactRepository", dockerRepository: "nginx" },
  });
  assert(
    assertThrows(() => hangarValidatePolicy({ keyPath: "/k", exactRepository: "UPPER" })).message.startsWith(
      `Invalid format of dockerRepository "UPPER": `,
    ),
  );
});
