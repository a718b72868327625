/**
 * Hostile manifests and indexes (issue 15 §5, §6). JSON that is not what its media type says — `[]`, `{}`,
 * `"config": null`, `"manifests": "x"` and the other named attacks — is a clear `MANIFEST_INVALID` error of that
 * image in `sign`, `sign validate`, `inspect`, `verify` and `mirror`: exit 1, no JavaScript error, nothing
 * signed, nothing copied, never accepted although a valid signature for exactly those bytes is in the registry.
 * Before, `sign` signed them, `validate` and `verify` accepted them, `inspect` crashed and `mirror` skipped a
 * malformed index with exit 0.
 *
 * The registry is a real `docker-registry` (it refuses to store such bytes) behind the testbed proxy, a FAKE
 * that rewrites the answers to `GET`/`HEAD` of the image's tag with the attack's bytes and media type. Plus the
 * parsers on their own: the named attacks, and seeded mutations of valid documents whose validity is known by
 * construction.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch } from "../assert.ts";
import { parseImageIndex, parseImageManifest } from "../../core/registry/manifest.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  type CliResult,
  pushSingle,
  sha256Digest,
  show,
  signArgs,
  startProxy,
  startRegistry,
  tempDir,
  validateArgs,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { makeKey, makeSigner } from "../testbed/keys.ts";
import { cosignPayloadBytes, pushSig, readSig, signedLayer } from "../testbed/signatures.ts";
import { baseSeed, caseCount, clearError, reportCases } from "./harness.ts";
import { manifestAttacks, mutateManifest, OCI_INDEX, validIndex, validManifest } from "./manifest_gen.ts";
import { Rng } from "./rng.ts";
import { endpoint } from "../mirror/helpers.ts";

const enc = new TextEncoder();

/** Parses `body` as what `mediaType` says; the error, or undefined when it parsed. */
function parse(body: string, mediaType: string): unknown {
  try {
    const bytes = enc.encode(body);
    if (mediaType === OCI_INDEX) parseImageIndex(bytes, "index", mediaType);
    else parseImageManifest(bytes, "manifest", mediaType);
    return undefined;
  } catch (e) {
    return e;
  }
}

Deno.test("manifest parser: every named attack is MANIFEST_INVALID; valid documents parse", () => {
  assertEquals(
    parse(JSON.stringify(validManifest()), "application/vnd.oci.image.manifest.v1+json"),
    undefined,
  );
  assertEquals(parse(JSON.stringify(validIndex()), OCI_INDEX), undefined);
  for (const a of manifestAttacks()) {
    const e = parse(a.body, a.mediaType);
    assert(e !== undefined, `${a.name}: accepted`);
    assertEquals(clearError(e, a.name).code, "MANIFEST_INVALID", a.name);
  }
});

Deno.test("manifest parser: seeded mutations are accepted exactly when valid, refused with MANIFEST_INVALID otherwise", () => {
  const n = caseCount(300);
  const seed = baseSeed();
  for (let i = 0; i < n; i++) {
    const m = mutateManifest(new Rng(seed + i));
    const e = parse(m.body, m.mediaType);
    const what = `seed ${seed + i} (${m.what})`;
    if (m.valid) assertEquals(e, undefined, `${what}: a valid document was refused: ${e}`);
    else {
      assert(e !== undefined, `${what}: an invalid document was accepted: ${m.body.slice(0, 300)}`);
      assertEquals(clearError(e, what).code, "MANIFEST_INVALID", what);
    }
  }
  reportCases(n, "manifests and indexes");
});

Deno.test("sign, validate, inspect, verify, mirror: a tag serving a malformed manifest is a clear per-image error", async (t) => {
  await using tmp = await tempDir("airlock-hostile-manifest-");
  await using reg = await startRegistry();
  await using dst = await startRegistry();
  const key = await makeKey(tmp.path, "k");
  const signer = await makeSigner(tmp.path, "signer");
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  await pushSingle(reg, "a/img", "v1", "hostile-manifest");
  let current = manifestAttacks()[0];
  let currentDigest = "";
  // The fake: the tag (and the digest of the attack's bytes) answer with the attack.
  await using proxy = await startProxy(reg.url, {
    rules: [{
      path: /^\/v2\/a\/img\/manifests\/(v1|sha256:[0-9a-f]{64})$/,
      action: {
        kind: "rewrite",
        fn: (res, req) => {
          if (!req.path.endsWith("/v1") && !req.path.endsWith(currentDigest)) return res;
          const headers = new Headers(res.headers);
          headers.set("content-type", current.mediaType);
          headers.set("docker-content-digest", currentDigest);
          return { status: 200, headers, body: enc.encode(current.body) };
        },
      },
    }],
  });
  const image = `${proxy.host}/a/img:v1`;
  await writeList(join(tmp.path, "list.txt"), [image]);
  const insecure = "--tls-verify=false";
  const commands: [string, string[]][] = [
    ["sign", signArgs({ list: "list.txt", keyFlag: "--key", key, registriesD: rd, insecure: true })],
    ["sign validate", validateArgs({ list: "list.txt", pub: signer.pub, registriesD: rd, insecure: true })],
    ["inspect", ["inspect", `docker://${image}`, insecure]],
    ["verify", ["verify", "--key", signer.pub, "--insecure-ignore-tlog", insecure, image]],
    ["mirror", ["mirror", "-f", "list.txt", "-d", dst.host, "--registries.d", rd, insecure]],
  ];
  const chosen = [
    "[] as a manifest",
    "{} as a manifest",
    "config: null",
    'manifests: "x"',
    "index entry size -1",
    "layers: [null]",
  ];
  for (const attack of manifestAttacks().filter((a) => chosen.includes(a.name))) {
    current = attack;
    currentDigest = await sha256Digest(enc.encode(attack.body));
    // A valid signature of exactly these bytes, for this reference, by a key the checks trust.
    await pushSig(reg, "a/img", currentDigest, [
      signedLayer(signer, cosignPayloadBytes(image, currentDigest)),
    ]);
    const results: CliResult[] = await Promise.all(
      commands.map(([, args]) => airlock(args, { cwd: tmp.path })),
    );
    await t.step(attack.name, async () => {
      for (const [i, [name]] of commands.entries()) {
        const r = results[i];
        assertEquals(r.code, 1, `${attack.name}: ${name}\n${show(r)}`);
        assertMatch(
          r.stdout + r.stderr,
          /is not a valid (image manifest|index|document)/,
          `${attack.name}: ${name}\n${show(r)}`,
        );
        assert(
          !/TypeError|RangeError|SyntaxError|Cannot read properties|is not iterable|undefined/.test(r.stderr),
          `${attack.name}: ${name} crashed\n${show(r)}`,
        );
      }
      const sig = await readSig(endpoint(reg), "a/img", currentDigest);
      assertEquals(
        sig?.layers.length,
        1,
        `${attack.name}: sign added nothing to the .sig of the malformed manifest`,
      );
      const catalog = await (await dst.fetch("/v2/_catalog")).json();
      assertEquals(catalog.repositories, [], `${attack.name}: mirror copied nothing`);
    });
  }
});
