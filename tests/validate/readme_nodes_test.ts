/**
 * The README's "Nodes that pull signed images" configuration, taken from the README itself: its policy.json and
 * registries.d file, with `registry.example.com` and the key path replaced, judge images signed by airlock as a
 * podman/CRI-O node pulling them would (`sign validate --policy`, every platform under the pulled reference):
 * pulls by tag and by digest pass on every platform; an unsigned image, another key's signature and the same
 * index reached through a tag it was not signed under are refused. The same policy in the oracle-skopeo tests
 * (`image-policies/match.json`) was judged by skopeo 1.14.5.
 */
import { join } from "node:path";
import { parsePolicy } from "../../core/config/policy_config.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  pushMulti,
  pushSingle,
  show,
  signArgs,
  startRegistry,
  tempDir,
  validateArgs,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { makeKey } from "../testbed/keys.ts";
import { assert, assertEquals } from "../assert.ts";

/** The fenced block of `lang` that follows `marker` in the README. */
function blockAfter(readme: string, marker: string, lang: string): string {
  const at = readme.indexOf(marker);
  assert(at >= 0, `README lacks ${marker}`);
  const open = readme.indexOf("```" + lang + "\n", at);
  assert(open >= 0, `no ${lang} block after ${marker}`);
  const start = open + lang.length + 4;
  return readme.slice(start, readme.indexOf("```", start));
}

Deno.test("README: the node policy.json and registries.d accept airlock's signatures by tag and by digest", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const policyText = blockAfter(readme, "`/etc/containers/policy.json`:", "json");
  const yamlText = blockAfter(readme, "`/etc/containers/registries.d/registry.example.com.yaml`", "yaml");
  parsePolicy(policyText); // loads as it is

  await using tmp = await tempDir("airlock-readme-nodes-");
  await using reg = await startRegistry();
  const h = reg.host;
  const key = await makeKey(tmp.path, "release");
  const other = await makeKey(tmp.path, "other");
  const policy = join(tmp.path, "policy.json");
  await Deno.writeTextFile(
    policy,
    policyText.replaceAll("registry.example.com", h).replace("/etc/containers/keys/airlock.pub", key.pub),
  );
  const nodeRd = await writeRegistriesD(
    tmp.path,
    yamlText.replaceAll("registry.example.com", h),
    "node-registries.d",
    `${h}.yaml`,
  );
  const signRd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);

  const multi = await pushMulti(reg, "app/multi", "1.0", "readme-multi");
  const single = await pushSingle(reg, "app/single", "1.0", "readme-single");
  const otherKey = await pushSingle(reg, "app/other", "1.0", "readme-other");
  await pushSingle(reg, "app/unsigned", "1.0", "readme-unsigned");
  const sign = async (k: typeof key, lines: string[]) => {
    await writeList(join(tmp.path, "sign.txt"), lines);
    const r = await airlock(signArgs({ list: "sign.txt", key: k, registriesD: signRd, insecure: true }), {
      cwd: tmp.path,
    });
    assertEquals(r.code, 0, show(r));
  };
  await sign(key, [`${h}/app/multi:1.0`, `${h}/app/single:1.0`]);
  await sign(other, [`${h}/app/other:1.0`]);
  // The signed index, tagged again afterwards under a tag nobody signed it as.
  const index = await fetch(`${reg.url}/v2/app/multi/manifests/1.0`, {
    headers: { accept: "application/vnd.oci.image.index.v1+json" },
  });
  const put = await fetch(`${reg.url}/v2/app/multi/manifests/latest`, {
    method: "PUT",
    headers: { "content-type": "application/vnd.oci.image.index.v1+json" },
    body: new Uint8Array(await index.arrayBuffer()),
  });
  assertEquals(put.status, 201);

  const lines = [
    `${h}/app/multi:1.0`,
    `${h}/app/multi@${multi.top.digest}`,
    `${h}/app/single:1.0`,
    `${h}/app/single@${single.top.digest}`,
    `${h}/app/unsigned:1.0`,
    `${h}/app/other@${otherKey.top.digest}`,
    `${h}/app/multi:latest`,
  ];
  await writeList(join(tmp.path, "pulls.txt"), lines);
  const r = await airlock(
    validateArgs({
      list: "pulls.txt",
      registriesD: nodeRd,
      insecure: true,
      extra: ["--policy", policy, "--output", "json"],
    }),
    { cwd: tmp.path },
  );
  assertEquals(r.code, 1, show(r));
  const images = JSON.parse(r.stdout).images as {
    status: string;
    targets: { status: string; reason: string | null }[];
  }[];
  assertEquals(images.map((i) => i.status), [
    "passed",
    "passed",
    "passed",
    "passed",
    "failed",
    "failed",
    "failed",
  ]);
  assertEquals(images[0].targets.length, 2); // both platforms, judged under the tag
  assertEquals(images[1].targets.length, 2);
  assertEquals(images[4].targets[0].reason, "A signature was required, but no signature exists");
  assertEquals(
    images[5].targets[0].reason,
    "cryptographic signature verification failed: invalid signature when validating ASN.1 encoded signature",
  );
  for (const t of images[6].targets) {
    assertEquals(t.reason, `Signature for identity "${h}/app/multi:1.0" is not accepted`);
  }
  assertEquals(
    await Deno.readTextFile(join(tmp.path, "validate-failed.txt")),
    lines.slice(4).join("\n") + "\n",
  );
});
