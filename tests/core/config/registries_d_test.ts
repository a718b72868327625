import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../assert.ts";
import { AirlockError } from "../../../core/errors.ts";
import type { Reference } from "../../../core/reference.ts";
import {
  BUILTIN_DEFAULT_FILE,
  describeSource,
  loadRegistriesD,
  lookasideLocation,
  parseRegistriesD,
  policyConfigurationNamespaces,
  type RegistriesDConfig,
  useSigstoreAttachments,
} from "../../../core/config/registries_d.ts";

// Every temporary directory of this file lives under one root, removed when the test module unloads.
const TMP_ROOT = Deno.makeTempDirSync({ prefix: "airlock-test-" });
globalThis.addEventListener("unload", () => Deno.removeSync(TMP_ROOT, { recursive: true }));

/** Writes `files` into a fresh directory and loads it as an explicit `--registries.d`. */
async function load(files: Record<string, string>): Promise<{ dir: string; config: RegistriesDConfig }> {
  const dir = await Deno.makeTempDir({ dir: TMP_ROOT, prefix: "airlock-regd-" });
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(`${dir}/${name}`, text);
  return { dir, config: await loadRegistriesD({ dir }) };
}

const ref = (registry: string, repository: string, tag?: string, digest?: string): Reference => ({
  registry,
  repository,
  tag,
  digest,
});

const DIGEST = "sha256:" + "ab".repeat(32);

// hangar package/registries.d/default.yaml, verbatim.
const HANGAR_DEFAULT_YAML = `# This is a default registries.d configuration file.  You may
# add to this file or create additional files in registries.d/.
default-docker:
  use-sigstore-attachments: true
#   lookaside: https://…

# docker:
#
#   privateregistry.com:
#    lookaside: https://privateregistry.com/sigstore/

docker:
#   "127.0.0.1:5000":
#     use-sigstore-attachments: true
`;

Deno.test("registries.d: the identity (host/repo:tag) wins over namespaces and default-docker", async () => {
  const { dir, config } = await load({
    "a.yaml": `
default-docker:
  use-sigstore-attachments: false
docker:
  reg.example.com/team/app:v1:
    use-sigstore-attachments: true
  reg.example.com/team:
    use-sigstore-attachments: false
`,
  });
  assertEquals(useSigstoreAttachments(config, ref("reg.example.com", "team/app", "v1")), {
    value: true,
    source: { file: `${dir}/a.yaml`, scope: `docker "reg.example.com/team/app:v1"` },
  });
  // another tag of the same repository falls to the namespace
  assertEquals(useSigstoreAttachments(config, ref("reg.example.com", "team/app", "v2")), {
    value: false,
    source: { file: `${dir}/a.yaml`, scope: `docker "reg.example.com/team"` },
  });
});

Deno.test("registries.d: a digest identity is host/repo@digest; no tag and no digest means :latest", async () => {
  const { config } = await load({
    "a.yaml": `docker:
  "reg.example.com/app@${DIGEST}":
    use-sigstore-attachments: true
  reg.example.com/other:latest:
    use-sigstore-attachments: true
`,
  });
  assertEquals(useSigstoreAttachments(config, ref("reg.example.com", "app", undefined, DIGEST)).value, true);
  assertEquals(useSigstoreAttachments(config, ref("reg.example.com", "app", "latest")).value, false);
  assertEquals(useSigstoreAttachments(config, ref("reg.example.com", "other")).value, true);
});

Deno.test("registries.d: namespaces are searched from most to least specific", async () => {
  const { dir, config } = await load({
    "a.yaml": `docker:
  reg.example.com:
    use-sigstore-attachments: false
  reg.example.com/a:
    use-sigstore-attachments: true
  reg.example.com/a/b:
    use-sigstore-attachments: false
`,
  });
  const f = `${dir}/a.yaml`;
  assertEquals(useSigstoreAttachments(config, ref("reg.example.com", "a/b/c", "1")), {
    value: false,
    source: { file: f, scope: `docker "reg.example.com/a/b"` },
  });
  assertEquals(useSigstoreAttachments(config, ref("reg.example.com", "a/x", "1")), {
    value: true,
    source: { file: f, scope: `docker "reg.example.com/a"` },
  });
  assertEquals(useSigstoreAttachments(config, ref("reg.example.com", "z", "1")), {
    value: false,
    source: { file: f, scope: `docker "reg.example.com"` },
  });
  // the repository itself (without tag) is a namespace too
  const { config: c2 } = await load({
    "a.yaml": "docker:\n  reg.example.com/a/b:\n    use-sigstore-attachments: true\n",
  });
  assertEquals(useSigstoreAttachments(c2, ref("reg.example.com", "a/b", "1")).value, true);
});

Deno.test("registries.d: a scope with the key absent or null does not stop the search", async () => {
  const { dir, config } = await load({
    "a.yaml": `default-docker:
  use-sigstore-attachments: true
docker:
  reg.example.com/team/app:v1:
    use-sigstore-attachments: null
  reg.example.com/team/app:
    lookaside: https://sigs.example.com
  reg.example.com/team:
  reg.example.com:
    use-sigstore-attachments: ~
`,
  });
  assertEquals(useSigstoreAttachments(config, ref("reg.example.com", "team/app", "v1")), {
    value: true,
    source: { file: `${dir}/a.yaml`, scope: "default-docker" },
  });
});

Deno.test("registries.d: wildcard domains match subdomains only, with the port stripped", async () => {
  assertEquals(policyConfigurationNamespaces(ref("reg.example.com:5000", "team/app")), [
    "reg.example.com:5000/team/app",
    "reg.example.com:5000/team",
    "reg.example.com:5000",
    "*.example.com",
    "*.com",
  ]);
  const { dir, config } = await load({
    "a.yaml": `docker:
  "*.example.com":
    use-sigstore-attachments: true
  "*.org":
    use-sigstore-attachments: true
  reg.example.net:
    use-sigstore-attachments: true
`,
  });
  assertEquals(useSigstoreAttachments(config, ref("reg.example.com:5000", "app", "1")), {
    value: true,
    source: { file: `${dir}/a.yaml`, scope: `docker "*.example.com"` },
  });
  assertEquals(useSigstoreAttachments(config, ref("a.b.example.com", "app", "1")).value, true);
  // *.example.com does not match example.com itself
  assertEquals(useSigstoreAttachments(config, ref("example.com", "app", "1")), { value: false });
  assertEquals(useSigstoreAttachments(config, ref("mirror.example.org:443", "x", "1")).value, true);
  // a host key without the port does not match a reference with a port
  assertEquals(useSigstoreAttachments(config, ref("reg.example.net:5000", "app", "1")), { value: false });
  // no dots, no wildcards
  assertEquals(policyConfigurationNamespaces(ref("localhost:5000", "a")), [
    "localhost:5000/a",
    "localhost:5000",
  ]);
});

Deno.test("registries.d: a more specific wildcard wins over a less specific one; namespaces win over wildcards", async () => {
  const { config } = await load({
    "a.yaml": `docker:
  "*.com":
    use-sigstore-attachments: false
  "*.example.com":
    use-sigstore-attachments: true
  reg.example.com:
    use-sigstore-attachments: false
`,
  });
  assertEquals(useSigstoreAttachments(config, ref("x.example.com", "app", "1")).value, true);
  assertEquals(useSigstoreAttachments(config, ref("reg.example.com", "app", "1")).value, false);
  assertEquals(useSigstoreAttachments(config, ref("x.other.com", "app", "1")).value, false);
});

Deno.test("registries.d: default-docker applies when no namespace matches; nothing configured means false", async () => {
  const { dir, config } = await load({ "default.yaml": HANGAR_DEFAULT_YAML });
  assertEquals(useSigstoreAttachments(config, ref("docker.io", "library/nginx", "1.25")), {
    value: true,
    source: { file: `${dir}/default.yaml`, scope: "default-docker" },
  });
  assertEquals(config.builtinDefault, false);
  const { config: empty } = await load({
    "a.yaml": "docker:\n  other.example.com:\n    lookaside: file:///x\n",
  });
  const d = useSigstoreAttachments(empty, ref("docker.io", "library/nginx", "1.25"));
  assertEquals(d, { value: false });
  assertEquals(describeSource(d.source), "not configured in any registries.d file");
});

Deno.test("registries.d: files are merged; default-docker in one file, namespaces in another", async () => {
  const { dir, config } = await load({
    "10-default.yaml": "default-docker:\n  use-sigstore-attachments: false\n",
    "20-reg.yaml": "docker:\n  reg.example.com:\n    use-sigstore-attachments: true\n",
    "30-empty.yaml": "",
    "notes.yml": "default-docker:\n  use-sigstore-attachments: true\n", // not *.yaml: ignored
    "README": "not yaml: [",
  });
  assertEquals(useSigstoreAttachments(config, ref("reg.example.com", "app", "1")), {
    value: true,
    source: { file: `${dir}/20-reg.yaml`, scope: `docker "reg.example.com"` },
  });
  assertEquals(useSigstoreAttachments(config, ref("other.example.com", "app", "1")), {
    value: false,
    source: { file: `${dir}/10-default.yaml`, scope: "default-docker" },
  });
  assertEquals(
    describeSource(useSigstoreAttachments(config, ref("other.example.com", "app", "1")).source),
    `default-docker in ${dir}/10-default.yaml`,
  );
});

Deno.test("registries.d: default-docker defined in two files is an error naming both", async () => {
  const dir = await Deno.makeTempDir({ dir: TMP_ROOT, prefix: "airlock-regd-" });
  await Deno.writeTextFile(`${dir}/b.yaml`, "default-docker:\n  use-sigstore-attachments: false\n");
  await Deno.writeTextFile(`${dir}/a.yaml`, "default-docker:\n  lookaside: file:///x\n");
  const err = await assertRejects(() => loadRegistriesD({ dir }), AirlockError);
  assertEquals(err.code, "CONFIG_INVALID");
  assertEquals(
    err.message,
    `Error parsing signature storage configuration: "default-docker" defined both in "${dir}/a.yaml" and "${dir}/b.yaml"`,
  );
});

Deno.test("registries.d: the same docker namespace in two files is an error naming both", async () => {
  const dir = await Deno.makeTempDir({ dir: TMP_ROOT, prefix: "airlock-regd-" });
  await Deno.writeTextFile(
    `${dir}/a.yaml`,
    "docker:\n  reg.example.com:\n    use-sigstore-attachments: true\n",
  );
  await Deno.writeTextFile(`${dir}/b.yaml`, "docker:\n  reg.example.com:\n");
  const err = await assertRejects(() => loadRegistriesD({ dir }), AirlockError);
  assertEquals(
    err.message,
    `Error parsing signature storage configuration: "docker" namespace "reg.example.com" defined both in "${dir}/a.yaml" and "${dir}/b.yaml"`,
  );
});

Deno.test("registries.d: unknown keys are ignored; YAML 1.1 booleans are accepted for the flag", async () => {
  const { config } = await load({
    "a.yaml": `something-else: 1
default-docker:
  use-sigstore-attachments: yes
  unknown-key: [1, 2]
docker:
  reg.example.com:
    use-sigstore-attachments: off
    lookaside: 123
`,
  });
  assertEquals(useSigstoreAttachments(config, ref("x.example.org", "a", "1")).value, true);
  assertEquals(useSigstoreAttachments(config, ref("reg.example.com", "a", "1")).value, false);
  assertEquals(lookasideLocation(config, ref("reg.example.com", "a", "1"), false)?.url, "123");
});

Deno.test("registries.d: a file that does not parse, or a wrong type, is an error naming the file", async () => {
  for (
    const text of [
      "default-docker: [\n",
      'default-docker:\n  use-sigstore-attachments: "true"\n',
      "docker: [a, b]\n",
      "- just a list\n",
      "docker:\n  a: 1\n  a: 2\n",
    ]
  ) {
    const dir = await Deno.makeTempDir({ dir: TMP_ROOT, prefix: "airlock-regd-" });
    await Deno.writeTextFile(`${dir}/bad.yaml`, text);
    const err = await assertRejects(() => loadRegistriesD({ dir }), AirlockError);
    assertEquals(err.code, "CONFIG_INVALID");
    assertStringIncludes(err.message, `parsing ${dir}/bad.yaml: `);
  }
});

Deno.test("registries.d: lookaside keys and their write/read precedence", async () => {
  const { dir, config } = await load({
    "a.yaml": `default-docker:
  sigstore: file:///old
  sigstore-staging: file:///old-staging
docker:
  reg.example.com:
    lookaside: https://sigs.example.com
    lookaside-staging: file:///mnt/sigs
`,
  });
  const f = `${dir}/a.yaml`;
  assertEquals(lookasideLocation(config, ref("reg.example.com", "a", "1"), true), {
    url: "file:///mnt/sigs",
    key: "lookaside-staging",
    source: { file: f, scope: `docker "reg.example.com"` },
  });
  assertEquals(lookasideLocation(config, ref("reg.example.com", "a", "1"), false)?.key, "lookaside");
  assertEquals(lookasideLocation(config, ref("other.example.com", "a", "1"), true)?.key, "sigstore-staging");
  assertEquals(lookasideLocation(config, ref("other.example.com", "a", "1"), false)?.url, "file:///old");
  const { config: none } = await load({});
  assertEquals(lookasideLocation(none, ref("x.io", "a", "1"), false), undefined);
});

Deno.test("registries.d: $HOME/.config/containers/registries.d is used if it exists, even empty", async () => {
  const home = await Deno.makeTempDir({ dir: TMP_ROOT, prefix: "airlock-home-" });
  const systemDir = await Deno.makeTempDir({ dir: TMP_ROOT, prefix: "airlock-etc-" });
  await Deno.writeTextFile(`${systemDir}/default.yaml`, HANGAR_DEFAULT_YAML);
  await Deno.mkdir(`${home}/.config/containers/registries.d`, { recursive: true });
  const user = await loadRegistriesD({ env: { HOME: home }, systemDir });
  assertEquals(user.directory, `${home}/.config/containers/registries.d`);
  assertEquals(user.builtinDefault, false);
  assertEquals(useSigstoreAttachments(user, ref("docker.io", "library/nginx", "1")), { value: false });

  await Deno.remove(`${home}/.config/containers/registries.d`);
  const sys = await loadRegistriesD({ home, systemDir });
  assertEquals(sys.directory, systemDir);
  assertEquals(useSigstoreAttachments(sys, ref("docker.io", "library/nginx", "1")), {
    value: true,
    source: { file: `${systemDir}/default.yaml`, scope: "default-docker" },
  });
});

Deno.test("registries.d: an empty system directory means nothing configured (false)", async () => {
  const home = await Deno.makeTempDir({ dir: TMP_ROOT, prefix: "airlock-home-" });
  const systemDir = await Deno.makeTempDir({ dir: TMP_ROOT, prefix: "airlock-etc-" });
  const config = await loadRegistriesD({ home, systemDir });
  assertEquals(config.builtinDefault, false);
  assertEquals(useSigstoreAttachments(config, ref("reg.example.com", "a", "1")), { value: false });
});

Deno.test("registries.d: no directory at all means hangar's shipped default, and says so", async () => {
  const home = await Deno.makeTempDir({ dir: TMP_ROOT, prefix: "airlock-home-" });
  const config = await loadRegistriesD({ home, systemDir: `${home}/no-such-etc` });
  assertEquals(config.builtinDefault, true);
  assertEquals(config.directory, undefined);
  const d = useSigstoreAttachments(config, ref("reg.example.com", "a", "1"));
  assertEquals(d, { value: true, source: { file: BUILTIN_DEFAULT_FILE, scope: "default-docker" } });
  assertStringIncludes(describeSource(d.source), "built-in default");
});

Deno.test("registries.d: an explicit directory that does not exist is an error", async () => {
  const home = await Deno.makeTempDir({ dir: TMP_ROOT, prefix: "airlock-home-" });
  const err = await assertRejects(() => loadRegistriesD({ dir: `${home}/missing` }), AirlockError);
  assertEquals(err.code, "INVALID_ARGUMENT");
  assertStringIncludes(err.message, `${home}/missing`);
});

Deno.test("registries.d: an explicit directory overrides the default locations", async () => {
  const home = await Deno.makeTempDir({ dir: TMP_ROOT, prefix: "airlock-home-" });
  await Deno.mkdir(`${home}/.config/containers/registries.d`, { recursive: true });
  await Deno.writeTextFile(
    `${home}/.config/containers/registries.d/a.yaml`,
    "default-docker:\n  use-sigstore-attachments: true\n",
  );
  const explicit = await Deno.makeTempDir({ dir: TMP_ROOT, prefix: "airlock-regd-" });
  const config = await loadRegistriesD({ dir: explicit, home });
  assertEquals(config.directory, explicit);
  assertEquals(useSigstoreAttachments(config, ref("a.io", "b", "c")).value, false);
});

Deno.test("registries.d: parseRegistriesD works on in-memory files", async () => {
  const config = await parseRegistriesD([["x.yaml", HANGAR_DEFAULT_YAML]]);
  assert(config.defaultDocker !== undefined);
  assertEquals(config.docker.size, 0);
  assertEquals((await parseRegistriesD([])).defaultDocker, undefined);
});
