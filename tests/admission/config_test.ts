/**
 * The admission configuration file: what it accepts, and every way a malformed one is refused (the service then
 * does not start). The files it names are real files in a temporary directory.
 *
 * @module
 */
import { join } from "node:path";
import { assertEquals, assertRejects, assertStringIncludes } from "../assert.ts";
import { loadAdmissionConfig, parseAdmissionConfig } from "../../core/admission/config.ts";
import { tempDir } from "../testbed/mod.ts";
import { makeKey } from "../testbed/keys.ts";

Deno.test("admission config: policy and cosign files parsed, defaults, relative paths", async () => {
  const p = await parseAdmissionConfig(
    "policy: policy.json\narch: [amd64]\nexemptNamespaces: [kube-system, airlock]\n" +
      "allowImages: ['reg.io/infra/pause:*']\ncacheTTL: 2m\ntimeout: 5s\n",
    "/etc/airlock/admission.yaml",
  );
  assertEquals(p.mode, {
    kind: "policy",
    policyPath: "/etc/airlock/policy.json",
    platforms: { arch: ["amd64"], os: ["linux"], variant: [] },
  });
  assertEquals([p.exemptNamespaces, p.allowImages.map((g) => g.pattern), p.cacheTtlMs, p.timeoutMs], [
    ["kube-system", "airlock"],
    ["reg.io/infra/pause:*"],
    120_000,
    5_000,
  ]);
  const c = await parseAdmissionConfig(
    "cosign:\n  certificateIdentityRegexp: '^https://ci\\.example/'\n  certificateOidcIssuer: https://token.example\n" +
      "  trustedRoot: /abs/root.json\n",
    "admission.yaml",
  );
  assertEquals(c.mode.kind === "cosign" && c.mode.identity?.subjectRegExp, "^https://ci\\.example/");
  assertEquals(c.mode.kind === "cosign" && c.mode.trustedRootPath, "/abs/root.json");
  assertEquals([c.cacheTtlMs, c.timeoutMs, c.exemptNamespaces], [300_000, 8_000, []]);
  const a = await parseAdmissionConfig(
    "cosign:\n  key: k.pub\n  annotations: {env: prod, team: shop}\n",
    "/etc/airlock/admission.yaml",
  );
  assertEquals(a.mode.kind === "cosign" && [a.mode.keyPath, a.mode.annotations], [
    "/etc/airlock/k.pub",
    { env: "prod", team: "shop" },
  ]);
});

Deno.test("admission config: malformed files are refused with the reason", async () => {
  const cases: [string, string][] = [
    ["", "exactly one YAML document"],
    ["policy: a.json\n---\npolicy: b.json\n", "exactly one YAML document"],
    ["- policy\n", "the top level must be a mapping"],
    ["policy: a.json\npolicy: b.json\n", "Map keys must be unique"],
    ["polcy: a.json\n", 'unknown key "polcy"'],
    ["exemptNamespaces: [x]\n", 'give "policy" (a containers policy.json) or "cosign"'],
    ["policy: a.json\ncosign: {key: k.pub}\n", `give "policy" or "cosign", not both`],
    ["policy: 7\n", `"policy" must be a non-empty string`],
    ["policy: a.json\ntimeout: 8\n", `"timeout" must be a duration`],
    ["policy: a.json\ntimeout: 45s\n", "at most 28s"],
    ["policy: a.json\ntimeout: 0s\n", "above 0"],
    ["policy: a.json\ncacheTTL: -1s\n", "must not be negative"],
    ["policy: a.json\ncacheTTL: 2d\n", "invalid duration"],
    ["policy: a.json\nexemptNamespaces: [Kube_System]\n", "is not a namespace name"],
    ["policy: a.json\nexemptNamespaces: kube-system\n", "must be a list of strings"],
    ["policy: a.json\nallowImages: ['reg io/x']\n", "invalid allowImages pattern"],
    ["policy: a.json\narch: []\n", `"arch" must not be empty`],
    ["cosign: {key: k.pub}\narch: [amd64]\n", `"arch" and "os" apply to "policy"`],
    ["cosign: {}\n", `"cosign" needs "key"`],
    ["cosign: {key: k.pub, certificateIdentity: a@b}\n", "exclude each other"],
    ["cosign: {certificateIdentity: a@b}\n", 'exactly one of "certificateOidcIssuer"'],
    ["cosign: {key: k.pub, insecureIgnoreTlog: yes}\n", "must be true or false"],
    ["cosign: {key: k.pub, keyData: x}\n", `unknown key "keyData" in "cosign"`],
  ];
  for (const [text, message] of cases) {
    const e = await assertRejects(() => parseAdmissionConfig(text, "/etc/a.yaml"));
    assertStringIncludes((e as Error).message, message, `for ${JSON.stringify(text)}`);
    assertStringIncludes((e as Error).message, 'invalid admission configuration "/etc/a.yaml"');
  }
});

Deno.test("admission config: the files it names are read at start; a missing or bad one refuses", async () => {
  await using tmp = await tempDir("airlock-admission-config-");
  const key = await makeKey(tmp.path, "k");
  const write = async (name: string, text: string) => {
    await Deno.writeTextFile(join(tmp.path, name), text);
    return join(tmp.path, name);
  };
  await write(
    "policy.json",
    JSON.stringify({
      default: [{ type: "reject" }],
      transports: { docker: { "reg.io": [{ type: "sigstoreSigned", keyPath: key.pub }] } },
    }),
  );
  const ok = await loadAdmissionConfig(await write("ok.yaml", "policy: policy.json\n"));
  assertEquals(ok.mode.kind, "policy");
  assertStringIncludes(ok.description, "policy.json");
  const cosign = await loadAdmissionConfig(
    await write("c.yaml", `cosign: {key: k.pub, insecureIgnoreTlog: true}\n`),
  );
  assertEquals(cosign.mode.kind === "cosign" && cosign.mode.publicKey !== undefined, true);

  await write(
    "nokey.json",
    JSON.stringify({ default: [{ type: "sigstoreSigned", keyPath: join(tmp.path, "gone.pub") }] }),
  );
  await write("notkey.pub", "hello\n");
  const refused: [string, string][] = [
    ["missing.yaml", "cannot read the configuration file"],
    [await write("p1.yaml", "policy: nothere.json\n"), "no such file or directory"],
    [await write("p2.yaml", "policy: nokey.json\n"), "gone.pub"],
    [await write("p3.yaml", "cosign: {key: notkey.pub}\n"), "not a public key PEM"],
    [
      await write("p4.yaml", "cosign: {certificateIdentity: a@b, certificateOidcIssuerRegexp: '(['}\n"),
      "cosign.certificateOidcIssuerRegexp",
    ],
    [
      await write(
        "p5.yaml",
        "cosign: {certificateIdentity: a@b, certificateOidcIssuer: x, trustedRoot: notkey.pub}\n",
      ),
      "notkey.pub",
    ],
  ];
  for (const [file, message] of refused) {
    const e = await assertRejects(() =>
      loadAdmissionConfig(file.startsWith("/") ? file : join(tmp.path, file))
    );
    assertStringIncludes((e as Error).message, message);
  }
});
