/**
 * `airlock inspect` through the real CLI (spec/hangar.md §10.1): `--raw` and `--config` bytes, platform choice,
 * the default view in hangar's Go key order, Docker schema 2, reference and transport errors, unreachable
 * registries, and TLS (untrusted, `--cert-dir`, certs.d under HOME, `--tls-verify=false`, plain http refused).
 *
 * Registries: one plain registry serving a copy of the peer-skopeo fixtures (images built here are pushed
 * into it too) and one TLS registry; both started once for the whole file.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../assert.ts";
import {
  airlock,
  buildImage,
  buildMultiArchImage,
  type CliResult,
  freePort,
  loadPeerSkopeoCases,
  makeUntrustedCa,
  type PeerSkopeoCase,
  pushImage,
  pushSingle,
  rawSink,
  sha256Digest,
  show,
  startPeerSkopeoRegistry,
  startRegistry,
  tempDir,
  type TestImage,
} from "../testbed/mod.ts";
import { MediaType } from "../../core/registry/types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** hangar's key order: containers/image `types.ImageInspectInfo` fields (5.29), then `LayersData` entries. */
const GO_KEYS = [
  "Tag",
  "Created",
  "DockerVersion",
  "Labels",
  "Architecture",
  "Variant",
  "Os",
  "Layers",
  "LayersData",
  "Env",
  "Author",
];
const GO_LAYER_KEYS = ["MIMEType", "Digest", "Size", "Annotations"];

/** Go's `json.MarshalIndent(v, "", "  ")` + "\n" for plain data: JSON with `<`, `>`, `&` escaped. */
function goIndent(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    /[<>&]/g,
    (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"),
  ) + "\n";
}

function ok(r: CliResult, what: string): void {
  assertEquals(r.code, 0, `${what} should succeed:\n${show(r)}`);
}

function fails(r: CliResult, what: string, ...needles: string[]): void {
  assert(r.code !== 0, `${what} should fail:\n${show(r)}`);
  assertEquals(r.stdout, "", `${what}: nothing on stdout`);
  for (const n of needles) assertStringIncludes(r.stderr, n, `${what}:\n${show(r)}`);
}

/** The config blob of a built (single-platform) image, parsed. */
function configOf(img: TestImage, manifestBytes = img.top.bytes): {
  digest: string;
  bytes: Uint8Array;
  json: Record<string, unknown>;
} {
  const m = JSON.parse(dec.decode(manifestBytes));
  const bytes = img.blobs.get(m.config.digest)!;
  return { digest: m.config.digest, bytes, json: JSON.parse(dec.decode(bytes)) };
}

/** The view hangar prints for a built image: computed from the config and manifest we made. */
function expectedView(img: TestImage, manifestBytes = img.top.bytes): Record<string, unknown> {
  const m = JSON.parse(dec.decode(manifestBytes));
  const c = configOf(img, manifestBytes).json as {
    created?: string;
    architecture: string;
    os: string;
    variant?: string;
    config: { Labels?: Record<string, string>; Env?: string[] };
  };
  const layers = m.layers as { mediaType: string; digest: string; size: number }[];
  return {
    Tag: "",
    Created: c.created, // buildImage writes a canonical RFC 3339 time, which Go prints back unchanged
    DockerVersion: "",
    Labels: c.config.Labels ?? null,
    Architecture: c.architecture,
    Variant: c.variant ?? "",
    Os: c.os,
    Layers: layers.map((l) => l.digest),
    LayersData: layers.map((l) => ({
      MIMEType: l.mediaType,
      Digest: l.digest,
      Size: l.size,
      Annotations: null,
    })),
    Env: c.config.Env ?? null,
    Author: "",
  };
}

/** Pushes one image made of a given config (and one real layer) with hand-written manifest fields. */
async function pushCustom(
  url: string,
  host: string,
  repository: string,
  tag: string,
  o: {
    format: "oci" | "docker";
    config: unknown;
    configMediaType?: string;
    layerAnnotations?: Record<string, string>;
    artifactType?: string;
  },
): Promise<
  { digest: string; bytes: Uint8Array; layer: { digest: string; size: number }; configDigest: string }
> {
  const base = await buildImage({ seed: `custom-${repository}-${tag}` });
  const layerEntry = [...base.blobs.entries()].find(([d]) => d !== configOf(base).digest)!;
  const configBytes = enc.encode(JSON.stringify(o.config));
  const configDigest = await sha256Digest(configBytes);
  const docker = o.format === "docker";
  const mediaType = docker ? MediaType.dockerManifest : MediaType.ociManifest;
  const layer = {
    mediaType: docker ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip,
    digest: layerEntry[0],
    size: layerEntry[1].length,
    ...(o.layerAnnotations ? { annotations: o.layerAnnotations } : {}),
  };
  const bytes = enc.encode(JSON.stringify({
    schemaVersion: 2,
    mediaType,
    ...(o.artifactType ? { artifactType: o.artifactType } : {}),
    config: {
      mediaType: o.configMediaType ?? (docker ? MediaType.dockerConfig : MediaType.ociConfig),
      digest: configDigest,
      size: configBytes.length,
    },
    layers: [layer],
  }));
  const sink = rawSink(url);
  const ref = { registry: host, repository };
  await sink.uploadBlob(ref, layerEntry[1], { digest: layerEntry[0] });
  await sink.uploadBlob(ref, configBytes, { digest: configDigest });
  await sink.putManifest({ ...ref, tag }, bytes, mediaType);
  return { digest: await sha256Digest(bytes), bytes, layer, configDigest };
}

Deno.test("airlock inspect through the CLI", async (t) => {
  const { cases } = await loadPeerSkopeoCases();
  await using home = await tempDir("airlock-cli-inspect-");
  await using reg = await startPeerSkopeoRegistry();
  const h = reg.host;
  const run = (args: string[], opts: { home?: string; env?: Record<string, string> } = {}) =>
    airlock(["inspect", ...args], { home: opts.home ?? home.path, env: opts.env });
  const insecure = (...args: string[]) => run(["--tls-verify=false", ...args]);

  // Images built here, with known labels / env / platforms, pushed into the same registry.
  const single = await buildImage({ seed: "view <&> test", platform: "linux/amd64" });
  await pushImage(single, { registry: h, repository: "built/single" }, "v1", rawSink(reg.url));
  const multi = await buildMultiArchImage({ seed: "multi", platforms: ["linux/amd64", "linux/arm64/v8"] });
  await pushImage(multi, { registry: h, repository: "built/multi" }, "v1", rawSink(reg.url));
  const dockerList = await buildMultiArchImage({
    seed: "docker",
    format: "docker",
    platforms: ["linux/amd64", "linux/arm64/v8"],
  });
  await pushImage(dockerList, { registry: h, repository: "built/docker" }, "v1", rawSink(reg.url));
  const childOf = (img: TestImage, platform: string) =>
    img.manifests.find((m) => m.digest === img.platforms.find((p) => p.platform === platform)!.digest)!;

  await t.step(
    "--raw prints the exact bytes of every peer-skopeo manifest, by tag and by digest",
    async () => {
      const targets: { ref: string; digest: string }[] = [];
      const add = (c: PeerSkopeoCase) => {
        targets.push({ ref: `${h}/${c.repository}:${c.tag}`, digest: c.digest });
        targets.push({ ref: `${h}/${c.repository}@${c.digest}`, digest: c.digest });
        for (const p of c.platforms ?? []) {
          targets.push({
            ref: `${h}/${c.repository}@${p.digest}`,
            digest: p.digest,
          });
        }
        for (const s of c.signatureTags ?? []) {
          targets.push({ ref: `${h}/${c.repository}:${s.tag}`, digest: s.sigManifestDigest });
          targets.push({ ref: `${h}/${c.repository}@${s.sigManifestDigest}`, digest: s.sigManifestDigest });
        }
      };
      cases.forEach(add);
      assert(targets.length >= 30, `expected many fixture manifests, got ${targets.length}`);
      const results = await Promise.all(targets.map((x) => insecure("--raw", x.ref)));
      for (const [i, r] of results.entries()) {
        ok(r, `inspect --raw ${targets[i].ref}`);
        assertEquals(
          await sha256Digest(r.stdoutBytes),
          targets[i].digest,
          `--raw bytes of ${targets[i].ref}`,
        );
        assertEquals(r.stdoutBytes.at(-1), "}".charCodeAt(0), "no trailing newline after --raw");
      }
      // The media types the fixtures declare are the ones in the bytes.
      for (const c of cases) {
        const r = results[targets.findIndex((x) => x.ref === `${h}/${c.repository}:${c.tag}`)];
        assertEquals(JSON.parse(r.stdout).mediaType, c.mediaType, c.id);
      }
    },
  );

  await t.step("--raw of built OCI and Docker images, and the docker:// prefix", async () => {
    const [a, b, c, d] = await Promise.all([
      insecure("--raw", `${h}/built/multi:v1`),
      insecure("--raw", `docker://${h}/built/docker:v1`),
      insecure("--raw", `docker://${h}/built/docker@${dockerList.platforms[1].digest}`),
      insecure("--raw", `${h}/built/single:v1`),
    ]);
    for (const r of [a, b, c, d]) ok(r, "inspect --raw");
    assertEquals(a.stdoutBytes, multi.top.bytes);
    assertEquals(b.stdoutBytes, dockerList.top.bytes);
    assertEquals(JSON.parse(b.stdout).mediaType, MediaType.dockerManifestList);
    assertEquals(c.stdoutBytes, childOf(dockerList, "linux/arm64/v8").bytes);
    assertEquals(d.stdoutBytes, single.top.bytes);
    // hangar warns when the transport is left out, not when docker:// is given.
    assertStringIncludes(d.stderr, `use 'docker' as default: docker://${h}/built/single:v1`);
    assert(!b.stderr.includes("protocol not provided"), b.stderr);
  });

  await t.step("--config prints the config blob exactly and wins over --raw", async () => {
    const a1 = cases.find((c) => c.id === "A1")!;
    // The fixture's config digest, read from the registry without airlock.
    const manifest = await (await reg.fetch(`/v2/${a1.repository}/manifests/${a1.digest}`, {
      headers: { accept: a1.mediaType },
    })).json();
    const [fixture, built, both] = await Promise.all([
      insecure("--config", `${h}/${a1.repository}:${a1.tag}`),
      insecure("--config", `${h}/built/single:v1`),
      insecure("--raw", "--config", `${h}/built/single:v1`),
    ]);
    ok(fixture, "--config fixture");
    assertEquals(await sha256Digest(fixture.stdoutBytes), manifest.config.digest);
    ok(built, "--config built");
    assertEquals(built.stdoutBytes, configOf(single).bytes);
    ok(both, "--raw --config");
    assertEquals(both.stdoutBytes, configOf(single).bytes, "--config takes precedence over --raw");
  });

  await t.step("--override-arch/--override-variant pick a child of a list; no match fails", async () => {
    const arm = childOf(multi, "linux/arm64/v8");
    const amd = childOf(multi, "linux/amd64");
    const a2 = cases.find((c) => c.id === "A2")!;
    const a2arm = a2.platforms.find((p) => p.platform === "linux/arm64/v8")!;
    const a2armManifest = await (await reg.fetch(`/v2/${a2.repository}/manifests/${a2arm.digest}`, {
      headers: { accept: MediaType.ociManifest },
    })).json();
    const [armCfg, amdCfg, armView, dockerArm, fixtureArm, s390x, s390xList] = await Promise.all([
      insecure("--config", "--override-arch", "arm64", "--override-variant", "v8", `${h}/built/multi:v1`),
      insecure("--config", "--override-arch", "amd64", "--override-os", "linux", `${h}/built/multi:v1`),
      insecure("--override-arch", "arm64", "--override-variant", "v8", `${h}/built/multi:v1`),
      insecure("--config", "--override-arch", "arm64", "--override-variant", "v8", `${h}/built/docker:v1`),
      insecure(
        "--config",
        "--override-arch",
        "arm64",
        "--override-variant",
        "v8",
        `${h}/${a2.repository}:v1`,
      ),
      insecure("--override-arch", "s390x", `${h}/built/multi:v1`),
      insecure("--config", "--override-arch", "s390x", `${h}/built/docker:v1`),
    ]);
    ok(armCfg, "arm64 config");
    assertEquals(armCfg.stdoutBytes, configOf(multi, arm.bytes).bytes);
    assertEquals(configOf(multi, arm.bytes).json.architecture, "arm64");
    ok(amdCfg, "amd64 config");
    assertEquals(amdCfg.stdoutBytes, configOf(multi, amd.bytes).bytes);
    ok(armView, "arm64 view");
    assertEquals(armView.stdout, goIndent(expectedView(multi, arm.bytes)));
    assertEquals(JSON.parse(armView.stdout).Variant, "v8");
    ok(dockerArm, "docker arm64 config");
    assertEquals(
      dockerArm.stdoutBytes,
      configOf(dockerList, childOf(dockerList, "linux/arm64/v8").bytes).bytes,
    );
    ok(fixtureArm, "fixture arm64 config");
    assertEquals(await sha256Digest(fixtureArm.stdoutBytes), a2armManifest.config.digest);
    fails(s390x, "s390x", 'no image found in image index for architecture "s390x"');
    fails(s390xList, "s390x list", 'no image found in manifest list for architecture "s390x"');
  });

  await t.step("the default view: Go key order and values of the image built", async () => {
    const [r, list, docker] = await Promise.all([
      insecure(`${h}/built/single:v1`),
      insecure("--override-arch", "amd64", "--override-os", "linux", `${h}/built/multi:v1`),
      insecure("--override-arch", "amd64", "--override-os", "linux", `${h}/built/docker:v1`),
    ]);
    ok(r, "view");
    const parsed = JSON.parse(r.stdout);
    assertEquals(Object.keys(parsed), GO_KEYS);
    assertEquals(Object.keys(parsed.LayersData[0]), GO_LAYER_KEYS);
    const want = expectedView(single);
    assertEquals(parsed, want);
    assertEquals((want.Labels as Record<string, string>)["airlock.test.seed"], "view <&> test");
    assertEquals(want.Env, ["PATH=/usr/bin:/bin"]);
    // Exact text: two-space indent, Go's escaping of <, >, &, one trailing newline.
    assertEquals(r.stdout, goIndent(want));
    assertStringIncludes(r.stdout, "view \\u003c\\u0026\\u003e test");
    ok(list, "view of a list child");
    assertEquals(list.stdout, goIndent(expectedView(multi, childOf(multi, "linux/amd64").bytes)));
    ok(docker, "view of a schema 2 child");
    const dockerChild = childOf(dockerList, "linux/amd64").bytes;
    assertEquals(list.stdout === docker.stdout, false);
    assertEquals(docker.stdout, goIndent(expectedView(dockerList, dockerChild)));
    assertEquals(JSON.parse(docker.stdout).LayersData[0].MIMEType, MediaType.dockerLayerGzip);
  });

  await t.step("the default view: times, absent fields, annotations (OCI and Docker schema 2)", async () => {
    const oci = await pushCustom(reg.url, h, "custom/oci", "v1", {
      format: "oci",
      config: {
        created: "2024-01-02T03:04:05.120000000+02:00",
        author: "Ann <ann@example.com>",
        architecture: "arm",
        variant: "v7",
        os: "linux",
        docker_version: "24.0.7",
        config: { Labels: {}, Env: [] },
        rootfs: { type: "layers", diff_ids: [] },
      },
      layerAnnotations: { "org.example.note": "a&b" },
    });
    const ociBare = await pushCustom(reg.url, h, "custom/oci", "bare", {
      format: "oci",
      config: { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } },
    });
    const dockerBare = await pushCustom(reg.url, h, "custom/docker", "bare", {
      format: "docker",
      config: { architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [] } },
    });
    const dockerUtc = await pushCustom(reg.url, h, "custom/docker", "utc", {
      format: "docker",
      config: {
        created: "2023-05-06T07:08:09.000000001+00:00",
        architecture: "amd64",
        os: "linux",
        config: { Env: ["A=1", "B=2"], Labels: { x: "y" } },
        rootfs: { type: "layers", diff_ids: [] },
      },
    });
    const [a, b, c, d] = await Promise.all([
      insecure(`${h}/custom/oci:v1`),
      insecure(`${h}/custom/oci:bare`),
      insecure(`${h}/custom/docker:bare`),
      insecure(`${h}/custom/docker@${dockerUtc.digest}`),
    ]);
    const layerData = (x: typeof oci, annotations: Record<string, string> | null = null) => ({
      Layers: [x.layer.digest],
      LayersData: [{
        MIMEType: (x.layer as { mediaType?: string }).mediaType,
        Digest: x.layer.digest,
        Size: x.layer.size,
        Annotations: annotations,
      }],
    });
    ok(a, "custom oci");
    assertEquals(
      a.stdout,
      goIndent({
        Tag: "",
        Created: "2024-01-02T03:04:05.12+02:00", // RFC 3339 with nanoseconds, trailing zeros dropped
        DockerVersion: "24.0.7",
        Labels: {},
        Architecture: "arm",
        Variant: "v7",
        Os: "linux",
        ...layerData(oci, { "org.example.note": "a&b" }),
        Env: [],
        Author: "Ann <ann@example.com>",
      }),
    );
    ok(b, "bare oci");
    assertEquals(
      b.stdout,
      goIndent({
        Tag: "",
        Created: null, // OCI without "created"
        DockerVersion: "",
        Labels: null,
        Architecture: "amd64",
        Variant: "",
        Os: "linux",
        ...layerData(ociBare),
        Env: null,
        Author: "",
      }),
    );
    ok(c, "bare docker");
    assertEquals(
      c.stdout,
      goIndent({
        Tag: "",
        Created: "0001-01-01T00:00:00Z", // schema 2 without "created": Go's zero time
        DockerVersion: "",
        Labels: null,
        Architecture: "amd64",
        Variant: "",
        Os: "linux",
        ...layerData(dockerBare),
        Env: null,
        Author: "",
      }),
    );
    ok(d, "docker by digest");
    assertEquals(
      d.stdout,
      goIndent({
        Tag: "",
        Created: "2023-05-06T07:08:09.000000001Z", // +00:00 is printed as Z
        DockerVersion: "",
        Labels: { x: "y" },
        Architecture: "amd64",
        Variant: "",
        Os: "linux",
        ...layerData(dockerUtc),
        Env: ["A=1", "B=2"],
        Author: "",
      }),
    );
  });

  await t.step(
    "signature artifacts: a non-image config fails without --raw; skopeo's .sig is shown",
    async () => {
      // An OCI 1.1 artifact (config of the empty media type): containers/image's NonImageArtifactError.
      const art = await pushCustom(reg.url, h, "custom/artifact", "sig", {
        format: "oci",
        config: {},
        configMediaType: MediaType.ociEmpty,
        artifactType: "application/vnd.dev.sigstore.bundle.v0.3+json",
      });
      const a1 = cases.find((c) => c.id === "A1")!;
      const sig = a1.signatureTags[0];
      const [view, raw, cfg, skopeoSig] = await Promise.all([
        insecure(`${h}/custom/artifact:sig`),
        insecure("--raw", `${h}/custom/artifact:sig`),
        insecure("--config", `${h}/custom/artifact:sig`),
        insecure(`${h}/${a1.repository}:${sig.tag}`),
      ]);
      fails(view, "view of an artifact", "artifact", MediaType.ociEmpty);
      assertMatch(view.stderr, /FATA/);
      ok(raw, "--raw of an artifact");
      assertEquals(raw.stdoutBytes, art.bytes);
      ok(cfg, "--config of an artifact");
      assertEquals(cfg.stdout, "{}");
      // A .sig manifest as skopeo/cosign write it declares an OCI *image* config, so containers/image (hangar's
      // engine) inspects it like an image: no platform, the signature layer with its annotation.
      ok(skopeoSig, "view of a skopeo .sig");
      const v = JSON.parse(skopeoSig.stdout);
      assertEquals(Object.keys(v), GO_KEYS);
      assertEquals([v.Architecture, v.Os, v.Created, v.Labels], ["", "", null, null]);
      assertEquals(v.Layers, sig.layers.map((l) => l.digest));
      assertEquals(v.LayersData[0].MIMEType, MediaType.cosignSimpleSigning);
      assertEquals(v.LayersData[0].Size, sig.layers[0].size);
      assertEquals(v.LayersData[0].Annotations, {
        "dev.cosignproject.cosign/signature": sig.layers[0].signatureAnnotation,
      });
    },
  );

  await t.step("bad references, other transports, missing argument", async () => {
    const [upper, badDigest, shortDigest, empty, emptyDocker, none, oci, dir, dockerNoSlashes, bogusTag] =
      await Promise.all([
        run([`${h}/A/Single:v1`]),
        run([`${h}/a/single@sha256:xyz`]),
        run([`${h}/a/single@sha256:abc`]),
        run([""]),
        run(["docker://"]),
        run([]),
        run(["oci:/tmp/layout:v1"]),
        run(["dir:/tmp/x"]),
        run(["docker:alpine"]),
        run([`${h}/a/single:-bad`]),
      ]);
    fails(upper, "uppercase", "invalid reference", "lowercase");
    fails(badDigest, "bad digest", "invalid reference");
    fails(shortDigest, "short digest", "invalid reference", "64");
    fails(empty, "empty", "image reference not provided");
    fails(emptyDocker, "docker:// alone", "invalid reference");
    fails(none, "no argument", "image reference not provided");
    fails(oci, "oci:", "oci:/tmp/layout:v1", "only docker://");
    fails(dir, "dir:", "only docker://");
    // hangar: "docker:" without "//" is the docker transport and fails to parse; never docker.io/library/docker.
    fails(dockerNoSlashes, "docker:alpine", "docker: image reference alpine does not start with //");
    assert(!dockerNoSlashes.stderr.includes("docker.io"), show(dockerNoSlashes));
    fails(bogusTag, "bad tag", "invalid reference");
  });

  await t.step("unreachable registries and missing images fail clearly", async () => {
    const closed = `127.0.0.1:${freePort()}`;
    const [refused, unknown, missingTag, missingRepo] = await Promise.all([
      insecure(`${closed}/a/b:v1`),
      insecure("no-such-registry.invalid:5000/a/b:v1"),
      insecure(`${h}/a/single:nope`),
      insecure(`${h}/no/such@sha256:${"0".repeat(64)}`),
    ]);
    fails(refused, "closed port", closed, "connection refused");
    fails(unknown, "unknown host", "no-such-registry.invalid", "not found");
    fails(missingTag, "missing tag", "404", "manifest unknown");
    fails(missingRepo, "missing repository", "404");
  });

  await t.step("plain http needs --tls-verify=false (no localhost exception)", async () => {
    const [plain, explicitTrue] = await Promise.all([
      run([`${h}/a/single:v1`]),
      run(["--tls-verify=true", `${h}/a/single:v1`]),
    ]);
    fails(plain, "plain http with TLS verification", h, "--tls-verify=false");
    fails(explicitTrue, "plain http with --tls-verify=true", "--tls-verify=false");
  });

  await t.step(
    "TLS registry: untrusted fails; --cert-dir, certs.d under HOME and --tls-verify=false work",
    async () => {
      await using tls = await startRegistry({ tls: true });
      const img = await pushSingle(tls, "t/tls", "v1", "tls");
      const ref = `${tls.host}/t/tls:v1`;
      await using other = await tempDir("airlock-cli-tls-");
      // --cert-dir: a flat directory with ca.crt.
      const flat = join(other.path, "flat");
      await Deno.mkdir(flat);
      await Deno.copyFile(tls.caCertPath!, join(flat, "ca.crt"));
      // A directory trusting an unrelated CA only.
      const wrong = join(other.path, "wrong");
      await Deno.mkdir(join(other.path, "ca"));
      await Deno.mkdir(wrong);
      await Deno.copyFile((await makeUntrustedCa(join(other.path, "ca"))).certPath, join(wrong, "ca.crt"));
      // certs.d under the HOME of a second run.
      const certsHome = join(other.path, "home");
      await Deno.mkdir(join(certsHome, ".config/containers/certs.d", tls.host), { recursive: true });
      await Deno.copyFile(tls.caCertPath!, join(certsHome, ".config/containers/certs.d", tls.host, "ca.crt"));

      const [untrusted, wrongCa, certDir, insecureRun, certsD, certsDConfig] = await Promise.all([
        run(["--raw", ref]),
        run(["--raw", "--cert-dir", wrong, ref]),
        run(["--raw", "--cert-dir", flat, ref]),
        run(["--raw", "--tls-verify=false", ref]),
        run(["--raw", ref], { home: certsHome }),
        run(["--config", `docker://${ref}`], { home: certsHome }),
      ]);
      fails(untrusted, "untrusted TLS", tls.host, "--cert-dir", "--tls-verify=false");
      assertMatch(untrusted.stderr, /TLS|certificate/);
      fails(wrongCa, "TLS with an unrelated CA", "--cert-dir");
      for (
        const [r, what] of [[certDir, "--cert-dir"], [insecureRun, "--tls-verify=false"], [
          certsD,
          "certs.d",
        ]] as const
      ) {
        ok(r, what);
        assertEquals(r.stdoutBytes, img.top.bytes, what);
      }
      ok(certsDConfig, "certs.d --config");
      assertEquals(certsDConfig.stdoutBytes, configOf(img).bytes);
    },
  );
});

// `--tls-verify [bool]` must not take the NEXT argument as its value (pflag: `--tls-verify IMAGE` = verification
// on + IMAGE), and a bad value is a one-line usage error, not an uncaught exception.
Deno.test({
  name: "inspect --tls-verify IMAGE parses IMAGE as the reference, as pflag does",
  fn: async () => {
    await using home = await tempDir("airlock-cli-inspect-");
    const closed = `127.0.0.1:${freePort()}`;
    const r = await airlock(["inspect", "--tls-verify", `${closed}/a/b:v1`], { home: home.path });
    fails(r, "--tls-verify IMAGE", closed);
    assert(!r.stderr.includes("Uncaught"), show(r));
    const bad = await airlock(["inspect", "--tls-verify=maybe", `${closed}/a/b:v1`], { home: home.path });
    fails(bad, "--tls-verify=maybe", "maybe");
    assert(!bad.stderr.includes("Uncaught"), show(bad));
  },
});
