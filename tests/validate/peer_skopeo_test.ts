/**
 * Every `matchRepoDigestOrExact` and `exactRepository` check of the peer-skopeo fixture (signatures made by
 * skopeo 1.14.5, every expectation confirmed with skopeo), reproduced through the real CLI against a copy of the
 * fixture registry. Expectations and skopeo's messages are read from cases.json.
 *
 * The fixture identities name `registry.test:5000`; the copy runs on 127.0.0.1:PORT, so `matchRepoDigestOrExact`
 * checks go through `--policy` with `remapIdentity {prefix: 127.0.0.1:PORT, signedPrefix: registry.test:5000}`
 * (what CASES.md prescribes), and `exactRepository` checks use `--exact-repository` (host-independent).
 *
 * One normalisation besides the host: skopeo 1.14.5 (containers/image 5.29.4) prints
 * `Signature for identity X is not accepted`; containers/image ≥ 5.31 (hangar v1.8.9 ships 5.33) and airlock
 * quote the identity, `Signature for identity "X" is not accepted` (spec/hangar.md §6.4h). The quotes are removed
 * from airlock's text before comparing.
 */
import { join } from "node:path";
import {
  airlock,
  loadPeerSkopeoCases,
  type PeerSkopeoCheck,
  remapPolicy,
  show,
  startPeerSkopeoRegistry,
  tempDir,
  validateArgs,
} from "../testbed/mod.ts";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";

interface JsonTarget {
  status: string;
  reason: string | null;
  code: string | null;
  platform: string | null;
}
interface JsonImage {
  id: number;
  line: string;
  status: string;
  targets: JsonTarget[];
  error: { message: string } | null;
}

const FAILURE_CODE: Record<string, string> = {
  "no-signature": "SIGNATURE_MISSING",
  "wrong-key": "SIGNATURE_INVALID",
  "digest-mismatch": "SIGNATURE_INVALID",
  "identity-not-accepted": "IDENTITY_NOT_ACCEPTED",
};

/** skopeo's reason: the text after the last `Source image rejected: `. */
function skopeoReason(message: string): string {
  const marker = "Source image rejected: ";
  return message.slice(message.lastIndexOf(marker) + marker.length);
}

/** The only wording difference between containers/image 5.29 and ≥ 5.31 (see the module notes). */
function unquoteIdentity(reason: string): string {
  return reason.replace(
    /^Signature for identity "(.*)" is not accepted$/,
    "Signature for identity $1 is not accepted",
  );
}

function archArgs(platform: string | undefined): string[] {
  if (platform === "linux/amd64") return ["-a", "amd64"];
  if (platform === "linux/arm64/v8") return ["-a", "arm64"];
  return []; // "all" and single manifests: hangar's default amd64,arm64 / linux
}

Deno.test("peer-skopeo: matchRepoDigestOrExact and exactRepository checks through the CLI", async () => {
  const fixture = await loadPeerSkopeoCases();
  await using reg = await startPeerSkopeoRegistry();
  await using tmp = await tempDir("airlock-validate-peer-");
  const host = fixture.identityHost;
  const checks: { caseId: string; check: PeerSkopeoCheck }[] = [];
  for (const c of fixture.cases) {
    for (const check of c.checks) {
      if (check.check === "matchRepoDigestOrExact" || check.check === "exactRepository") {
        checks.push({ caseId: c.id, check });
      }
    }
  }
  assert(checks.length >= 30, `expected the fixture's checks, found ${checks.length}`);

  // One CLI run per (check kind, key, platform, dockerRepository); each run validates all of its references.
  const groups = new Map<string, typeof checks>();
  for (const item of checks) {
    const k = [item.check.check, item.check.key, item.check.platform, item.check.dockerRepository ?? ""].join(
      "|",
    );
    groups.set(k, [...(groups.get(k) ?? []), item]);
  }
  let verified = 0;
  let runIndex = 0;
  for (const group of groups.values()) {
    const { check: first } = group[0];
    const dir = join(tmp.path, `run${runIndex++}`);
    await Deno.mkdir(dir);
    const lines = group.map(({ check }) => {
      assert(check.reference.startsWith(`${host}/`), check.reference);
      return reg.host + check.reference.slice(host.length);
    });
    await Deno.writeTextFile(join(dir, "list.txt"), lines.join("\n") + "\n");
    const keyFile = fixture.keys[first.key].publicKey;
    let identityArgs: string[];
    if (first.check === "matchRepoDigestOrExact") {
      await Deno.writeTextFile(join(dir, "policy.json"), remapPolicy(reg.host, keyFile, host));
      identityArgs = ["--policy", join(dir, "policy.json")];
    } else {
      identityArgs = ["-p", keyFile, "--exact-repository", String(first.dockerRepository)];
    }
    const r = await airlock(
      validateArgs({
        list: "list.txt",
        jobs: 4,
        insecure: true,
        extra: ["--output", "json", ...archArgs(first.platform), ...identityArgs],
      }),
      { home: dir },
    );
    const expectFailures = group.some(({ check }) => check.expect === "fail");
    assertEquals(r.code, expectFailures ? 1 : 0, show(r));
    const doc = JSON.parse(r.stdout) as { images: JsonImage[] };
    assertEquals(doc.images.length, group.length);

    group.forEach(({ caseId, check }, i) => {
      const got = doc.images[i];
      const what =
        `${caseId} ${check.check} key=${check.key} ${check.reference} platform=${check.platform} ` +
        `repo=${check.dockerRepository ?? "-"}`;
      const ref = lines[i];
      if (check.expect === "pass") {
        assertEquals(got.status, "passed", `${what}\n${JSON.stringify(got, null, 1)}`);
        assert(got.targets.length > 0 && got.targets.every((t) => t.status === "accepted"), what);
        assertStringIncludes(r.stderr, `[INFO] [IMG:${i + 1}] PASS: [${ref}]\n`, what);
      } else {
        assertEquals(got.status, "failed", `${what}\n${JSON.stringify(got, null, 1)}`);
        const message = (check.verified as { asRegistryTest: { message: string } }).asRegistryTest.message;
        const expected = skopeoReason(message);
        const rejected = got.targets.filter((t) => t.status === "rejected");
        assert(rejected.length > 0, what);
        for (const t of rejected) {
          assertEquals(unquoteIdentity(t.reason ?? ""), expected, what);
          assertEquals(t.code, FAILURE_CODE[check.failure ?? ""], what);
        }
        // hangar's error line, with the reason as airlock prints it.
        assertStringIncludes(
          r.stderr,
          `[ERRO] error occurred on [IMG: ${
            i + 1
          }] [${ref}]: failed to validate signature [docker://${ref}]: `,
          what,
        );
        assertStringIncludes(r.stderr, `sign validate: ${rejected[0].reason}`, what);
      }
      verified++;
    });
    if (expectFailures) {
      const failedLines = lines.filter((_, i) => group[i].check.expect === "fail");
      assertEquals(await Deno.readTextFile(join(dir, "validate-failed.txt")), failedLines.join("\n") + "\n");
      assertStringIncludes(r.stderr, "[FATA] some images failed validation");
    }
  }
  assertEquals(verified, checks.length);
});
