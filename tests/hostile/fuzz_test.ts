/**
 * The seeded hostile-input suite (issue 15 §6): signed payloads and their signatures, `.sig` manifests, key files,
 * policy files, image lists and HTTP answers, generated from a seed (`HOSTILE_SEED`) in `HOSTILE_CASES` cases
 * each (`deno task hostile` runs 2000 per generator, 12,000 in all; CI runs the few hundred below). For every
 * case: no crash (only airlock's errors, with their codes), no hang (each case has a watchdog), no acceptance of
 * anything invalid (every mutation here is invalid by construction; only the untouched controls pass), and no
 * secret (passphrase, password) in any message. A failing case prints its seed.
 *
 * Tar headers and manifests have their own generators and tests (`tar_test.ts`, `manifest_test.ts`), counted by
 * the task too.
 *
 * @module
 */
import { generateKeyPairSync } from "node:crypto";
import { assert, assertEquals } from "../assert.ts";
import { encryptPrivateKey, loadPrivateKeyPem, SIGSTORE_KEY_PEM_TYPE } from "../../backends/file.ts";
import { AirlockError } from "../../core/errors.ts";
import { parseImageList, resolveImageList } from "../../core/image_list.ts";
import { hangarValidatePolicy, parsePolicy } from "../../core/config/policy_config.ts";
import { PolicyEvaluator } from "../../core/config/policy_eval.ts";
import { formatReference, parseReference } from "../../core/reference.ts";
import { RegistryClient } from "../../core/registry/client.ts";
import { parseAttachmentManifest } from "../../core/signature/attachment_manifest.ts";
import { join } from "node:path";
import {
  airlock,
  ATTACHMENTS_ON,
  leaksSecret,
  sha256Digest,
  show,
  signArgs,
  tempDir,
  validateArgs,
  writeAuthFile,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { makeKey, makeSigner } from "../testbed/keys.ts";
import { cosignPayloadBytes } from "../testbed/signatures.ts";
import { baseSeed, caseCount, clearError, reportCases, within } from "./harness.ts";
import { hostileAnswer, startHostileRegistry } from "./http_gen.ts";
import { mutateKey } from "./key_gen.ts";
import { randomList } from "./list_gen.ts";
import { mutatePolicy } from "./policy_gen.ts";
import { Rng } from "./rng.ts";
import { mutateSigManifest, mutateSigned } from "./sig_gen.ts";

const enc = new TextEncoder();

/** A well-formed image manifest of no layers: the good bytes the hostile answers stand in for. */
const SMALL_MANIFEST = enc.encode(JSON.stringify({
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {
    mediaType: "application/vnd.oci.image.config.v1+json",
    digest: `sha256:${"c".repeat(64)}`,
    size: 2,
  },
  layers: [],
}));
const SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json";

Deno.test("seeded: signed payloads and signatures — only the untouched pair is accepted", async () => {
  await using tmp = await tempDir("airlock-fuzz-sig-");
  const signer = await makeSigner(tmp.path, "s");
  const evaluator = new PolicyEvaluator(hangarValidatePolicy({ keyPath: signer.pub }));
  const ref = "registry.example.io/app/web:1.0";
  const n = caseCount(150);
  const seed = baseSeed();
  let accepted = 0;
  for (let i = 0; i < n; i++) {
    const rng = new Rng(seed + i);
    const digest = `sha256:${rng.text(64, "0123456789abcdef")}`;
    const payload = cosignPayloadBytes(ref, digest);
    const c = mutateSigned(rng, payload, signer.signB64(payload));
    const what = `seed ${seed + i}: ${c.what}`;
    const d = await within(
      evaluator.isRunningImageAllowed({
        reference: parseReference(ref),
        manifestDigest: digest,
        signatures: () =>
          Promise.resolve([{
            kind: "sigstore" as const,
            mimeType: SIMPLE_SIGNING,
            payload: c.payload,
            annotations: c.annotations,
          }]),
      }),
      5_000,
      what,
    );
    assertEquals(d.allowed, c.intact, `${what}: ${d.allowed ? "accepted" : d.error.message}`);
    if (!d.allowed) clearError(d.error, what);
    if (d.allowed) accepted++;
  }
  reportCases(n, "signed payloads and signatures", `${accepted} untouched controls accepted`);
  assert(accepted > 0, "the controls were accepted (the check can pass)");
});

Deno.test("seeded: .sig manifests of any shape are read or refused with a clear error, never a crash", async () => {
  const n = caseCount(150);
  const seed = baseSeed();
  const seen = { valid: 0, invalid: 0, either: 0 };
  for (let i = 0; i < n; i++) {
    const c = mutateSigManifest(new Rng(seed + i));
    const what = `seed ${seed + i}: ${c.what}: ${new TextDecoder().decode(c.bytes.subarray(0, 200))}`;
    const r = await within(
      Promise.resolve().then(() => parseAttachmentManifest(c.bytes)).then(
        (m) => m,
        (e) => clearError(e, what),
      ),
      5_000,
      what,
    );
    const refused = r instanceof AirlockError;
    if (c.expect === "valid") assert(!refused, `${what}: refused: ${refused ? r.message : ""}`);
    if (c.expect === "invalid") assert(refused, `${what}: accepted`);
    seen[c.expect]++;
  }
  reportCases(n, ".sig manifests", `${seen.valid} valid, ${seen.invalid} invalid, ${seen.either} either`);
  if (n >= 50) assert(seen.valid > 0 && seen.invalid > 0, `both checks ran: ${JSON.stringify(seen)}`);
});

Deno.test("seeded: key files — only the untouched file with its passphrase opens; the passphrase is never in a message", async () => {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const passphrase = "fuzz-secret-passphrase-42";
  const pkcs8 = new Uint8Array(privateKey.export({ type: "pkcs8", format: "der" }));
  const pem = await encryptPrivateKey(pkcs8, enc.encode(passphrase), {
    pemType: SIGSTORE_KEY_PEM_TYPE,
    scryptN: 32768,
  });
  const n = caseCount(24, 0.1);
  const seed = baseSeed();
  let opened = 0;
  for (let i = 0; i < n; i++) {
    const c = mutateKey(new Rng(seed + i), pem, passphrase);
    const what = `seed ${seed + i}: ${c.what}`;
    const quiet = { passphrase: c.passphrase, env: () => undefined, isTerminal: () => false };
    const r = await within(
      loadPrivateKeyPem(c.pem, "fuzz.key", quiet).then((k) => k, (e) => clearError(e, what)),
      30_000,
      what,
    );
    if ("code" in r) {
      assert(!c.intact, `${what}: the intact key was refused: ${r.message}`);
      assert(
        !r.message.includes(passphrase) && !r.message.includes(c.passphrase),
        `${what}: secret in "${r.message}"`,
      );
    } else {
      assert(c.intact, `${what}: a mutated key file opened`);
      opened++;
      await r.close();
    }
  }
  reportCases(n, "key files", `${opened} untouched controls opened`);
  if (n >= 12) assert(opened > 0, "the controls opened (the check can pass)");
});

Deno.test("seeded: policy files — only the valid control loads; the rest are CONFIG_INVALID", () => {
  const n = caseCount(150);
  const seed = baseSeed();
  for (let i = 0; i < n; i++) {
    const c = mutatePolicy(new Rng(seed + i));
    const what = `seed ${seed + i}: ${c.what}`;
    let error: unknown;
    try {
      parsePolicy(c.text);
    } catch (e) {
      error = e;
    }
    if (c.valid) assertEquals(error, undefined, `${what}: ${error}`);
    else assertEquals(clearError(error ?? new Error("accepted"), what).code, "CONFIG_INVALID", what);
  }
  reportCases(n, "policy files");
});

Deno.test("seeded: image lists — every line resolved or refused by itself, resolved references valid", () => {
  const n = caseCount(150);
  const seed = baseSeed();
  for (let i = 0; i < n; i++) {
    const text = randomList(new Rng(seed + i));
    const what = `seed ${seed + i}`;
    const resolved = resolveImageList(parseImageList(text));
    for (const r of resolved) {
      assert(
        r.line.line.length > 0 && !r.line.line.includes("\n"),
        `${what}: line ${JSON.stringify(r.line.line)}`,
      );
      if (r.status === "ok") {
        const again = parseReference(formatReference(r.reference));
        assertEquals(formatReference(again), formatReference(r.reference), `${what}: ${r.line.line}`);
      } else if (r.status === "invalid") clearError(r.error, what);
    }
  }
  reportCases(n, "image lists");
});

Deno.test("seeded: HTTP answers — verified bytes or a clear error, in bounded time; credentials never leave the host or the process", async () => {
  await using reg = startHostileRegistry();
  const secret = "fuzz-registry-password-77";
  // A client per case: what one hostile answer teaches a client about a registry (its auth scheme) stays there.
  const newClient = () =>
    new RegistryClient({
      tlsVerify: false,
      retries: 1,
      retryBaseDelayMs: 1,
      retryMaxDelayMs: 5,
      requestTimeoutMs: 3_000,
      credentials: () => Promise.resolve({ username: "u", password: secret }),
    });
  const n = caseCount(150);
  const seed = baseSeed();
  const manifest = SMALL_MANIFEST;
  const blob = enc.encode("a small blob of some bytes");
  const manifestDigest = await sha256Digest(manifest);
  const blobDigest = await sha256Digest(blob);
  const secrets = [secret, btoa(`u:${secret}`)];
  let verified = 0;
  const codes = new Map<string, number>();
  try {
    for (let i = 0; i < n; i++) {
      const rng = new Rng(seed + i);
      const name = `fz/c${i}`;
      const readsManifest = rng.chance(0.5);
      const [good, digest] = readsManifest ? [manifest, manifestDigest] : [blob, blobDigest];
      const answer = hostileAnswer(rng, good, digest, "application/vnd.oci.image.manifest.v1+json", reg);
      reg.set(name, () => answer);
      const what = `seed ${seed + i}: ${readsManifest ? "manifest" : "blob"}, ${answer.what}`;
      const ref = { registry: reg.host, repository: name, digest };
      const client = newClient();
      const read = readsManifest ? client.getManifest(ref).then((m) => m.bytes) : client.getBlob(ref, digest);
      const r = await within(read.then((b) => b, (e) => clearError(e, what)), 20_000, what)
        .finally(() => client.close());
      if (r instanceof Uint8Array) {
        assertEquals(await sha256Digest(r), digest, `${what}: bytes that are not the digest asked for`);
        verified++;
      } else {
        for (const s of secrets) assert(!r.message.includes(s), `${what}: a credential in "${r.message}"`);
        codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
      }
    }
  } finally {
    // each case's client was closed with it
  }
  reportCases(
    n,
    "HTTP answers",
    `${verified} verified, refused: ${[...codes].map(([c, k]) => `${c} ${k}`).join(", ")}`,
  );
  assertEquals(reg.leaked, [], "credentials were sent to another host");
  assert(verified > 0 || n < 20, "some answers were good (the check can pass)");
});

/** What a program's output must never hold: a JavaScript failure (an engine error, a stack, a value printed by mistake). */
const CRASH_TEXT =
  /\b(TypeError|RangeError|SyntaxError|ReferenceError|InternalError|undefined|NaN)\b|\[object |Uncaught|at file:\/\/|at async /;

Deno.test("seeded: airlock inspect, verify, sign validate and sign as programs against hostile answers — they end by themselves with a documented exit code, a clean message, no secret", async () => {
  await using tmp = await tempDir("airlock-fuzz-cli-");
  await using reg = startHostileRegistry();
  const password = "fuzz-cli-registry-password-91";
  const authFile = await writeAuthFile(tmp.path, { [reg.host]: ["fuzzer", password] });
  const key = await makeKey(tmp.path, "k");
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  const secrets = [password, btoa(`fuzzer:${password}`), key.passphrase];
  const manifest = SMALL_MANIFEST;
  const digest = await sha256Digest(manifest);
  const tls = "--tls-verify=false";
  const n = caseCount(8, 0.05);
  const seed = baseSeed();
  const outcomes = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const rng = new Rng(seed + i);
    const name = `fzcli/c${i}`;
    // One hostile answer for the image's manifest, another for everything else it reads (.sig tags, blobs).
    const forManifest = hostileAnswer(
      rng,
      manifest,
      digest,
      "application/vnd.oci.image.manifest.v1+json",
      reg,
    );
    const forRest = hostileAnswer(rng, manifest, digest, "application/vnd.oci.image.manifest.v1+json", reg);
    reg.set(
      name,
      (path) =>
        path.endsWith("/manifests/v1") || path.endsWith(`/manifests/${digest}`) ? forManifest : forRest,
    );
    const ref = `${reg.host}/${name}:v1`;
    await writeList(join(tmp.path, "list.txt"), [ref]);
    const [command, args] = rng.pick<[string, string[]]>([
      ["inspect", ["inspect", tls, ref]],
      ["verify", ["verify", "--key", key.pub, "--insecure-ignore-tlog", tls, ref]],
      ["sign validate", validateArgs({ list: "list.txt", pub: key.pub, registriesD: rd, insecure: true })],
      ["sign", signArgs({ list: "list.txt", key, registriesD: rd, insecure: true })],
    ]);
    const what = `seed ${seed + i}: ${command}; manifest: ${forManifest.what}; rest: ${forRest.what}`;
    // The watchdog is far past the commands' own deadline (--timeout 20s): ending is the program's job.
    const r = await airlock([...args, "--timeout", "20s"], {
      cwd: tmp.path,
      env: { REGISTRY_AUTH_FILE: authFile },
      timeoutMs: 60_000,
      stripLockNotice: true,
    });
    // verify exits as cosign does: 10 when no signature is found, 12 when none matches; the others 0 or 1.
    const allowed = command === "verify" ? [0, 1, 10, 12] : [0, 1];
    assert(
      allowed.includes(r.code),
      `${what}: exit ${r.code} (a hang killed by the watchdog, or a crash)\n${show(r)}`,
    );
    const crash = CRASH_TEXT.exec(r.stdout + r.stderr);
    assert(!crash, `${what}: "${crash?.[0]}" in the output\n${show(r)}`);
    const leaked = leaksSecret(r, secrets);
    assert(!leaked, `${what}: a secret in the output`);
    if (r.code !== 0) {
      assert(
        /\[(ERRO|FATA)\]|Error: /.test(r.stderr),
        `${what}: exit ${r.code} without a message\n${show(r)}`,
      );
    }
    outcomes.set(`${command} ${r.code}`, (outcomes.get(`${command} ${r.code}`) ?? 0) + 1);
  }
  reportCases(n, "programs against hostile answers", [...outcomes].map(([k, v]) => `${k}: ${v}`).join(", "));
  assertEquals(reg.leaked, [], "credentials were sent to another host");
});
