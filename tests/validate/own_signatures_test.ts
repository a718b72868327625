/**
 * `airlock sign validate` on signatures made by `airlock sign` (both through the real CLI): passing images,
 * tampering (a re-pointed tag, a swapped `.sig`, a corrupted payload), the documented arch pitfall,
 * `--require-index-signature`, `--key`, registries.d, pre-flight texts, failed lists and `--output json`.
 * Expected texts are containers/image's and hangar's (spec/hangar.md §6).
 */
import { join } from "node:path";
import { generateKeyPair } from "../../backends/keygen.ts";
import {
  airlock,
  buildImage,
  buildMultiArchImage,
  type CliResult,
  exists,
  pushImage,
  rawSink,
  sha256Digest,
  show,
  signArgs,
  startRegistry,
  tempDir,
  type TestRegistry,
  validateArgs,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { sigTag } from "../testbed/signatures.ts";
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";

const ATTACHMENTS_ON = "default-docker:\n  use-sigstore-attachments: true\n";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

interface Env {
  reg: TestRegistry;
  dir: string;
  key: string;
  pub: string;
  pass: string;
  passphrase: string;
}

async function setup(reg: TestRegistry, dir: string): Promise<Env> {
  const passphrase = "validate-test-passphrase";
  const pair = await generateKeyPair({ passphrase, scryptN: 32768, pemType: "ENCRYPTED COSIGN PRIVATE KEY" });
  const env = {
    reg,
    dir,
    key: join(dir, "k.key"),
    pub: join(dir, "k.pub"),
    pass: join(dir, "k.pass"),
    passphrase,
  };
  await Deno.writeTextFile(env.key, pair.privatePem);
  await Deno.writeTextFile(env.pub, pair.publicPem);
  await Deno.writeTextFile(env.pass, passphrase);
  await Deno.mkdir(join(dir, "rd"));
  await Deno.writeTextFile(join(dir, "rd", "default.yaml"), ATTACHMENTS_ON);
  return env;
}

let listSeq = 0;
function list(env: Env, lines: string[]): Promise<string> {
  return writeList(join(env.dir, `list${++listSeq}.txt`), lines);
}

async function sign(env: Env, lines: string[], ...extra: string[]): Promise<void> {
  const r = await airlock(
    signArgs({ list: await list(env, lines), key: env, registriesD: "rd", insecure: true, extra }),
    { home: env.dir },
  );
  assertEquals(r.code, 0, show(r));
}

async function validate(env: Env, lines: string[], ...extra: string[]): Promise<CliResult> {
  const hasKey = extra.includes("--key") || extra.includes("--policy") || extra.includes("-p");
  return await airlock(
    validateArgs({
      list: await list(env, lines),
      pub: hasKey ? undefined : env.pub,
      registriesD: "rd",
      insecure: true,
      extra,
    }),
    { home: env.dir },
  );
}

async function push(env: Env, repo: string, tag: string, multi: boolean, seed: string): Promise<string> {
  const img = multi ? await buildMultiArchImage({ seed }) : await buildImage({ seed });
  return await pushImage(img, { registry: env.reg.host, repository: repo }, tag, rawSink(env.reg.url));
}

async function getManifest(
  env: Env,
  repo: string,
  ref: string,
): Promise<{ bytes: Uint8Array; type: string }> {
  const res = await env.reg.fetch(`/v2/${repo}/manifests/${ref}`, {
    headers: { accept: `${OCI_MANIFEST}, application/vnd.oci.image.index.v1+json` },
  });
  assertEquals(res.status, 200, `GET ${repo}:${ref}`);
  return { bytes: new Uint8Array(await res.arrayBuffer()), type: res.headers.get("content-type") ?? "" };
}

async function putManifest(env: Env, repo: string, ref: string, m: { bytes: Uint8Array; type: string }) {
  await rawSink(env.reg.url).putManifest(
    { registry: env.reg.host, repository: repo, tag: ref },
    m.bytes,
    m.type,
  );
}

function errorLine(r: CliResult, id: number, ref: string): string {
  const start = r.stderr.indexOf(`[ERRO] error occurred on [IMG: ${id}] [${ref}]: `);
  assert(start >= 0, `no error line for IMG ${id}\n${show(r)}`);
  const next = r.stderr.indexOf("\n[", start);
  return r.stderr.slice(start, next < 0 ? undefined : next);
}

Deno.test("validate: airlock-signed images pass; tampering and gaps are rejected with the exact texts", async () => {
  await using reg = await startRegistry();
  await using tmp = await tempDir("airlock-validate-own-");
  const env = await setup(reg, tmp.path);
  const h = reg.host;
  const multi = await push(env, "own/multi", "v1", true, "m");
  await push(env, "own/single", "v1", false, "s");
  await push(env, "own/noindex", "v1", true, "n");
  await push(env, "own/amd", "v1", true, "a");
  await push(env, "own/tags", "v1", false, "t1");
  await push(env, "own/tags", "v2", false, "t2");
  const swapA = await push(env, "own/swap", "a", false, "sa");
  const swapB = await push(env, "own/swap", "b", false, "sb");
  const corrupt = await push(env, "own/corrupt", "v1", false, "c");
  await push(env, "own/unsigned", "v1", false, "u");
  await sign(
    env,
    [
      `${h}/own/multi:v1`,
      `${h}/own/single:v1`,
      `${h}/own/tags:v1`,
      `${h}/own/tags:v2`,
      `${h}/own/swap:a`,
      `${h}/own/swap:b`,
      `${h}/own/corrupt:v1`,
    ],
    "-j",
    "4",
  );
  await sign(env, [`${h}/own/noindex:v1`], "--sign-index=false");
  await sign(env, [`${h}/own/amd:v1`], "--arch", "amd64");

  // 1. Signed images pass; a stale failed list is removed.
  await Deno.writeTextFile(join(tmp.path, "validate-failed.txt"), "stale\n");
  const ok = await validate(
    env,
    [`${h}/own/multi:v1`, `${h}/own/single:v1`, `${h}/own/noindex:v1`],
    "-j",
    "3",
  );
  assertEquals(ok.code, 0, show(ok));
  for (const [i, r] of [`${h}/own/multi:v1`, `${h}/own/single:v1`, `${h}/own/noindex:v1`].entries()) {
    assertStringIncludes(ok.stdout, `[INFO] [IMG:${i + 1}] PASS: [${r}]\n`);
  }
  assertStringIncludes(ok.stdout, `[INFO] Validating images in "`);
  assertStringIncludes(ok.stdout, `with sigstore public key "${env.pub}"\n`);
  assertStringIncludes(ok.stdout, "[INFO] Done\n");
  assertEquals(ok.stderr, "");
  assert(!(await exists(join(tmp.path, "validate-failed.txt"))), "stale failed list left behind");

  // 2. --require-index-signature: the index signed by default passes; --sign-index=false fails on the index.
  const idx = await validate(env, [`${h}/own/multi:v1`, `${h}/own/noindex:v1`], "--require-index-signature");
  assertEquals(idx.code, 1, show(idx));
  assertStringIncludes(idx.stdout, `[INFO] [IMG:1] PASS: [${h}/own/multi:v1]`);
  assertEquals(
    errorLine(idx, 2, `${h}/own/noindex:v1`),
    `[ERRO] error occurred on [IMG: 2] [${h}/own/noindex:v1]: failed to validate signature ` +
      `[docker://${h}/own/noindex:v1]: error occurred when validate image [docker://${h}/own/noindex:v1]: ` +
      `sign validate: A signature was required, but no signature exists`,
  );

  // 3. Signed for amd64 only, validated for the default amd64,arm64: the arm64 child has no signature.
  const amd = await validate(env, [`${h}/own/amd:v1`]);
  assertEquals(amd.code, 1, show(amd));
  assertEquals(
    errorLine(amd, 1, `${h}/own/amd:v1`),
    `[ERRO] error occurred on [IMG: 1] [${h}/own/amd:v1]: failed to validate signature [docker://${h}/own/amd:v1]: ` +
      `error occurred when validate image [docker://${h}/own/amd:v1]: sign validate: A signature was required, ` +
      `but no signature exists`,
  );
  assertEquals((await validate(env, [`${h}/own/amd:v1`], "-a", "amd64")).code, 0);

  // 4. Tampering.
  // A re-pointed tag: v1 now names v2's manifest, whose signature claims :v2.
  await putManifest(env, "own/tags", "v1", await getManifest(env, "own/tags", "v2"));
  // A swapped .sig: a's tag holds b's signature manifest.
  await putManifest(env, "own/swap", sigTag(swapA), await getManifest(env, "own/swap", sigTag(swapB)));
  // A corrupted payload: same annotation, payload changed by one byte, descriptor digest consistent.
  const sig = JSON.parse(
    new TextDecoder().decode((await getManifest(env, "own/corrupt", sigTag(corrupt))).bytes),
  );
  const layer = sig.layers[0];
  const blob = new Uint8Array(await (await reg.fetch(`/v2/own/corrupt/blobs/${layer.digest}`)).arrayBuffer());
  const text = new TextDecoder().decode(blob).replace(
    /"timestamp":(\d)/,
    (_m, d) => `"timestamp":${(Number(d) + 1) % 10}`,
  );
  const changed = new TextEncoder().encode(text);
  assert(text !== new TextDecoder().decode(blob));
  const changedDigest = await sha256Digest(changed);
  await rawSink(reg.url).uploadBlob({ registry: h, repository: "own/corrupt" }, changed, {
    digest: changedDigest,
  });
  sig.layers[0] = { ...layer, digest: changedDigest, size: changed.length };
  await putManifest(env, "own/corrupt", sigTag(corrupt), {
    bytes: new TextEncoder().encode(JSON.stringify(sig)),
    type: OCI_MANIFEST,
  });

  const lines = [
    `${h}/own/tags:v1`,
    `${h}/own/swap:a`,
    `${h}/own/corrupt:v1`,
    `${h}/own/unsigned:v1`,
    `${h}/own/multi:v1`,
  ];
  const bad = await validate(env, lines, "-j", "2", "-o", "bad.txt");
  assertEquals(bad.code, 1, show(bad));
  const chain = (ref: string) => `failed to validate signature [docker://${ref}]: sign validate: `;
  assertEquals(
    errorLine(bad, 1, lines[0]),
    `[ERRO] error occurred on [IMG: 1] [${lines[0]}]: ${
      chain(lines[0])
    }Signature for identity "${h}/own/tags:v2" is not accepted`,
  );
  assertEquals(
    errorLine(bad, 2, lines[1]),
    `[ERRO] error occurred on [IMG: 2] [${lines[1]}]: ${
      chain(lines[1])
    }Signature for digest ${swapB} does not match`,
  );
  assertEquals(
    errorLine(bad, 3, lines[2]),
    `[ERRO] error occurred on [IMG: 3] [${lines[2]}]: ${
      chain(lines[2])
    }cryptographic signature verification ` +
      `failed: invalid signature when validating ASN.1 encoded signature`,
  );
  assertEquals(
    errorLine(bad, 4, lines[3]),
    `[ERRO] error occurred on [IMG: 4] [${lines[3]}]: ${
      chain(lines[3])
    }A signature was required, but no signature exists`,
  );
  assertStringIncludes(bad.stdout, `[INFO] [IMG:5] PASS: [${lines[4]}]`);
  // Failed list: input order, the lines as written; hangar's summary lines; the airlock final message.
  assertEquals(await Deno.readTextFile(join(tmp.path, "bad.txt")), lines.slice(0, 4).join("\n") + "\n");
  assertStringIncludes(
    bad.stderr,
    `[ERRO] Signature validate failed image list: \n${lines.slice(0, 4).join("\n")}\n`,
  );
  assertStringIncludes(bad.stdout, `[INFO] Failed image list exported to "bad.txt"`);
  assert(bad.stderr.trimEnd().endsWith("[FATA] some images failed validation"), bad.stderr);

  // 5. Mirrored elsewhere with its signatures: the identity claims the first repository (hangar docs).
  for (const m of (await pushMirror(env, "own/multi", "mirror/multi", multi))) assert(m);
  const mirrored = await validate(env, [`${h}/mirror/multi:v1`]);
  assertEquals(mirrored.code, 1);
  assertStringIncludes(mirrored.stderr, `Signature for identity "${h}/own/multi:v1" is not accepted`);
  const exact = await validate(env, [`${h}/mirror/multi:v1`], "--exact-repository", `${h}/own/multi`);
  assertEquals(exact.code, 0, show(exact));

  // 6. --key: a public key file, or the private key (its public half; passphrase from COSIGN_PASSWORD).
  const byPub = await validate(env, [`${h}/own/single:v1`], "--key", env.pub);
  assertEquals(byPub.code, 0, show(byPub));
  const byPriv = await airlock(
    validateArgs({
      list: await list(env, [`${h}/own/single:v1`]),
      registriesD: "rd",
      insecure: true,
      extra: ["--key", env.key],
    }),
    { home: tmp.path, env: { COSIGN_PASSWORD: env.passphrase } },
  );
  assertEquals(byPriv.code, 0, show(byPriv));

  // 7. registries.d that disables attachments: nothing is read; the rejection says so and names the file and
  // scope to change (containers/image would only say that no signature exists).
  /** `sign validate -p <pub>` of `image` with the registries.d directory `rd` (relative: messages name it so). */
  const validateWith = async (rd: string, image: string) =>
    await airlock(
      validateArgs({ list: await list(env, [image]), pub: env.pub, registriesD: rd, insecure: true }),
      { home: tmp.path },
    );
  await writeRegistriesD(
    tmp.path,
    "default-docker:\n  use-sigstore-attachments: false\n",
    "rd-off",
    "a.yaml",
  );
  const off = await validateWith("rd-off", `${h}/own/single:v1`);
  assertEquals(off.code, 1);
  assertStringIncludes(
    off.stderr,
    `sign validate: reading sigstore attachments is disabled by configuration for ${h}/own/single:v1 ` +
      `(use-sigstore-attachments is false for default-docker in rd-off/a.yaml); ` +
      `set "use-sigstore-attachments: true" there\n`,
  );
  assert(!off.stderr.includes("no signature exists"), off.stderr);
  // A registries.d directory whose files leave the flag unset: the same, naming the directory.
  await writeRegistriesD(tmp.path, "docker:\n  other.example:\n    lookaside: x\n", "rd-unset", "a.yaml");
  const unset = await validateWith("rd-unset", `${h}/own/multi:v1`);
  assertEquals(unset.code, 1, show(unset));
  assertStringIncludes(
    unset.stderr,
    `sign validate: reading sigstore attachments is disabled by configuration for ${h}/own/multi@sha256:`,
  );
  assertStringIncludes(
    unset.stderr,
    `(use-sigstore-attachments is not set for it in any file of the registries.d directory rd-unset); add ` +
      `"use-sigstore-attachments: true" under default-docker`,
  );
  assert(!unset.stderr.includes("no signature exists"), unset.stderr);

  // 8. --output json: one document on stdout, every log line on stderr.
  const json = await validate(env, [`${h}/own/multi:v1`, `${h}/own/unsigned:v1`], "--output", "json");
  assertEquals(json.code, 1);
  const doc = JSON.parse(json.stdout);
  assertEquals(doc.summary, { passed: 1, failed: 1, skipped: 0, ignored: 0 });
  assertEquals(doc.images[0].targets.map((t: { platform: string }) => t.platform), [
    "linux/amd64",
    "linux/arm64/v8",
  ]);
  assertEquals(doc.images[1].targets[0].code, "SIGNATURE_MISSING");
  assertStringIncludes(json.stderr, `[INFO] [IMG:1] PASS: [${h}/own/multi:v1]`);
});

async function pushMirror(env: Env, from: string, to: string, top: string): Promise<boolean[]> {
  // Copy the image (blobs, children, index) and every .sig tag of its manifests to another repository.
  const sink = rawSink(env.reg.url);
  const ref = { registry: env.reg.host, repository: to };
  const index = await getManifest(env, from, top);
  const children = (JSON.parse(new TextDecoder().decode(index.bytes)).manifests as { digest: string }[]).map((
    m,
  ) => m.digest);
  const copyBlob = async (digest: string) => {
    const bytes = new Uint8Array(await (await env.reg.fetch(`/v2/${from}/blobs/${digest}`)).arrayBuffer());
    await sink.uploadBlob(ref, bytes, { digest });
  };
  const copyManifest = async (at: string, tag: string) => {
    const m = await getManifest(env, from, at);
    const doc = JSON.parse(new TextDecoder().decode(m.bytes));
    if (doc.config) await copyBlob(doc.config.digest);
    for (const l of doc.layers ?? []) await copyBlob(l.digest);
    await putManifest(env, to, tag, m);
  };
  for (const c of children) {
    await copyManifest(c, c);
    await copyManifest(sigTag(c), sigTag(c));
  }
  await copyManifest(top, "v1");
  return [true];
}

Deno.test("validate: pre-flight errors are hangar's texts, before any network call", async () => {
  await using tmp = await tempDir("airlock-validate-preflight-");
  await Deno.writeTextFile(join(tmp.path, "l.txt"), "127.0.0.1:1/a/b:v1\n");
  const run = (...args: string[]) => airlock(["sign", "validate", ...args], { home: tmp.path });
  const fatal = (r: CliResult) => {
    assertEquals(r.code, 1, show(r));
    const m = /\[FATA\] (.*)\n$/.exec(r.stderr);
    assert(m, show(r));
    return m[1];
  };
  assertEquals(
    fatal(await run("-p", "x.pub")),
    "image list file not provided, use '--file' option to specify the image list file",
  );
  assertEquals(
    fatal(await run("-f", "l.txt")),
    "sigstore public key file not provided, use '--sigstore-pubkey' option to specify the pub-key file",
  );
  assertEquals(
    fatal(await run("-f", "l.txt", "-p", "missing.pub")),
    `failed to get status of file "missing.pub": stat missing.pub: no such file or directory`,
  );
  await Deno.writeTextFile(join(tmp.path, "k.pub"), "x");
  assertEquals(
    fatal(await run("-f", "l.txt", "-p", "k.pub", "-j", "21")),
    "invalid worker number 21: --jobs must be 1-20",
  );
  assert(
    fatal(await run("-f", "l.txt", "-p", "k.pub", "--exact-repository", "UPPER/Case")).startsWith(
      `failed to build policy: signature NewPRMExactRepository failed: Invalid format of dockerRepository "UPPER/Case": `,
    ),
  );
  await Deno.writeTextFile(join(tmp.path, "p.json"), `{"default":[{"type":"reject"}],"x":1}`);
  assertEquals(
    fatal(await run("-f", "l.txt", "--policy", "p.json")),
    `invalid policy in "p.json": Unknown key "x"`,
  );
  // A policy that rejects everything: the image fails with containers/image's reject text, no key needed.
  await Deno.writeTextFile(join(tmp.path, "p2.json"), `{"default":[{"type":"reject"}]}`);
  await using reg = await startRegistry();
  await pushImage(
    await buildImage({ seed: "r" }),
    { registry: reg.host, repository: "r/x" },
    "v1",
    rawSink(reg.url),
  );
  await Deno.writeTextFile(join(tmp.path, "l2.txt"), `${reg.host}/r/x:v1\n`);
  const rej = await run("-f", "l2.txt", "--policy", "p2.json", "--tls-verify=false");
  assertEquals(rej.code, 1);
  assertStringIncludes(
    rej.stderr,
    `sign validate: Running image docker://${reg.host}/r/x:v1 is rejected by policy.\n`,
  );
});
