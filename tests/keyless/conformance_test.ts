/**
 * sigstore-conformance `bundle-verify`: every case, with its expected outcome from the fixture (a `_fail` suffix
 * must fail). Inputs per case as its README says: `bundle.sigstore.json`, `artifact` (else `../a.txt`),
 * `identity`/`issuer` (else the conformance defaults), `key.pub` (key mode), `trusted_root.json` (else public
 * good).
 */
import { inTotoSubjectMatches, parseInTotoStatement } from "../../core/keyless/dsse.ts";
import { parseTrustedRoot, publicGoodTrustedRoot } from "../../core/keyless/trusted_root.ts";
import { verifyKeyless, verifyWithKey } from "../../core/keyless/verify.ts";
import { assertEquals } from "../assert.ts";
import { sha256Hex, vector } from "./helpers.ts";

const DIR = vector("conformance/bundle-verify/");
const DEFAULT_IDENTITY =
  "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER = "https://token.actions.githubusercontent.com";

async function readOptional(path: string): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

async function runCase(name: string): Promise<void> {
  const dir = `${DIR}${name}/`;
  const text = async (f: string) => {
    const b = await readOptional(dir + f);
    return b === undefined ? undefined : new TextDecoder().decode(b).trim();
  };
  const bundle = await Deno.readFile(dir + "bundle.sigstore.json");
  const artifact = (await readOptional(dir + "artifact")) ?? await Deno.readFile(DIR + "a.txt");
  const rootBytes = await readOptional(dir + "trusted_root.json");
  const trustedRoot = rootBytes
    ? await parseTrustedRoot(rootBytes, `${name}/trusted_root.json`)
    : await publicGoodTrustedRoot();
  const key = await text("key.pub");
  const result = key !== undefined
    ? await verifyWithKey({ bundle, artifact }, { publicKey: key, trustedRoot })
    : await verifyKeyless({ bundle, artifact }, {
      trustedRoot,
      identity: {
        subject: (await text("identity")) ?? DEFAULT_IDENTITY,
        issuer: (await text("issuer")) ?? DEFAULT_ISSUER,
      },
    });
  if (result.content.kind === "dsse") {
    // For DSSE bundles the artifact is the attestation's subject.
    const st = parseInTotoStatement(result.content.payloadType, result.content.payload);
    if (!inTotoSubjectMatches(st, await sha256Hex(artifact))) {
      throw new Error("no in-toto subject matches the artifact");
    }
  }
}

const cases = [...Deno.readDirSync(DIR)].filter((e) => e.isDirectory).map((e) => e.name).sort();

Deno.test(`conformance bundle-verify: every case has its expected outcome (${cases.length} cases)`, async () => {
  const wrong: string[] = [];
  let passing = 0;
  for (const name of cases) {
    const shouldFail = name.endsWith("_fail");
    let error: unknown;
    try {
      await runCase(name);
    } catch (e) {
      error = e;
    }
    if ((error !== undefined) === shouldFail) passing++;
    else {wrong.push(
        `${name}: ${error === undefined ? "verified, must fail" : `failed: ${(error as Error).message}`}`,
      );}
  }
  assertEquals(wrong, []);
  assertEquals(passing, cases.length);
});

Deno.test("conformance: trust-root-tlog-missing-validity-start_fail is rejected for its trusted root", async () => {
  const name = "trust-root-tlog-missing-validity-start_fail";
  let err: unknown;
  try {
    await parseTrustedRoot(await Deno.readFile(`${DIR}${name}/trusted_root.json`), name);
  } catch (e) {
    err = e;
  }
  assertEquals((err as { code?: string })?.code, "TRUSTED_ROOT_INVALID");
});
