/**
 * `--policy` loads exactly the policy files containers/image loads. Each file of
 * `tests/fixtures/oracle-skopeo/policies/` was given to upstream skopeo 1.14.5 (containers/image 5.29.4), and
 * `verdicts.json` records whether it loaded the policy and what it printed (see the fixtures README). A policy
 * skopeo refuses (`Error loading trust policy`) must be refused by airlock too — before any image is read, so no
 * image of the list can pass — and a policy skopeo loads must load.
 */
import { join } from "node:path";
import { loadPolicyFile } from "../../core/config/policy_config.ts";
import { AirlockError } from "../../core/errors.ts";
import {
  airlock,
  fixturePath,
  show,
  startPeerSkopeoRegistry,
  tempDir,
  validateArgs,
} from "../testbed/mod.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../assert.ts";

interface Verdict {
  file: string;
  loaded: boolean;
  exit: number;
  message: string;
}

const DIR = fixturePath("oracle-skopeo", "policies");

async function verdicts(): Promise<Verdict[]> {
  return JSON.parse(await Deno.readTextFile(join(DIR, "verdicts.json"))) as Verdict[];
}

/** skopeo's reason after `invalid policy in "<file>": `. */
function skopeoReason(v: Verdict): string {
  const marker = `invalid policy in "${v.file}": `;
  const at = v.message.indexOf(marker);
  assert(at >= 0, v.message);
  return v.message.slice(at + marker.length);
}

Deno.test("policy oracle: airlock loads the policy files skopeo 1.14.5 loads and refuses the others", async () => {
  const all = await verdicts();
  assert(all.filter((v) => !v.loaded).length >= 15, "the fixture's refused policies");
  assert(all.filter((v) => v.loaded).length >= 4, "the fixture's accepted policies");
  for (const v of all) {
    const path = join(DIR, v.file);
    if (v.loaded) {
      await loadPolicyFile(path);
      continue;
    }
    const e = await assertRejects(() => loadPolicyFile(path), AirlockError);
    assertEquals(e.code, "CONFIG_INVALID", v.file);
    const reason = skopeoReason(v);
    const ours = e.message.slice(`invalid policy in "${path}": `.length);
    assertStringIncludes(e.message, `invalid policy in "${path}": `, v.file);
    // Go prints a nil token as %!s(<nil>) (containers/image 5.29); airlock's text names the token as later
    // containers/image releases do. The rest is the same text.
    if (reason.startsWith("JSON object expected, got ")) {
      assert(ours.startsWith("JSON object expected, got "), `${v.file}: ${ours}`);
    } else {
      assertEquals(ours, reason, v.file);
    }
  }
});

Deno.test("policy oracle: sign validate --policy with a policy skopeo refuses fails before any image passes", async () => {
  await using reg = await startPeerSkopeoRegistry();
  await using tmp = await tempDir("airlock-policy-oracle-");
  const all = await verdicts();
  for (
    const file of ["transports-null.json", "scope-list-null.json", "bom.json", "oci-relative-scope.json"]
  ) {
    const v = all.find((x) => x.file === file)!;
    assert(v && !v.loaded, file);
    await Deno.writeTextFile(
      join(tmp.path, "list.txt"),
      `${reg.host}/a/unsigned:v1\n${reg.host}/a/single:v1\n`,
    );
    const r = await airlock(
      validateArgs({ list: "list.txt", insecure: true, extra: ["--policy", join(DIR, file)] }),
      { home: tmp.path },
    );
    assertEquals(r.code, 1, show(r));
    assertStringIncludes(r.stderr, `invalid policy in "${join(DIR, file)}": `, file);
    assert(!r.stderr.includes("PASS"), show(r));
    assert(!r.stdout.includes("PASS"), show(r));
  }
});
