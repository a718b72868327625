/**
 * The demo: `deno task demo`. Starts its own registry on 127.0.0.1, pushes hand-built single- and multi-arch
 * images, inspects them, generates a key pair, signs every image with a few jobs, signs again to show that a
 * re-run adds nothing, shows the signatures written, validates them (as hangar does, and as a podman/CRI-O node
 * pulling each image by tag and by digest under a `policy.json` does) and verifies them, then shows a tampered
 * image being rejected. Uses only its own registries.d and auth file, never the
 * machine's; stops everything it started.
 *
 * @module
 */
import { buildImage, buildMultiArchImage, pushImage, startRegistry } from "../tests/testbed/mod.ts";
import { RegistryClient } from "../core/registry/client.ts";

const cli = new URL("../cli.ts", import.meta.url).pathname;
const bold = (s: string) => (Deno.stdout.isTerminal() ? `\x1b[1m${s}\x1b[0m` : s);

function step(title: string): void {
  console.log(`\n${bold(`== ${title}`)}`);
}

/** Runs the airlock CLI as a user would, showing the command line. */
async function airlock(cwd: string, env: Record<string, string>, ...args: string[]): Promise<number> {
  console.log(`$ airlock ${args.join(" ")}`);
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--quiet", cli, ...args],
    cwd,
    env,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  return code;
}

const work = await Deno.makeTempDir({ prefix: "airlock-demo-" });
await using registry = await startRegistry();
try {
  const host = registry.host;
  const env = {
    HOME: work,
    REGISTRY_AUTH_FILE: `${work}/auth.json`,
    NO_COLOR: "1",
  };

  step(`A local registry runs at ${host} (docker-registry, plain HTTP on loopback)`);
  const client = new RegistryClient({ tlsVerify: false });
  const images: string[] = [];
  const pinned: string[] = []; // the same images named by digest
  for (const name of ["web", "api", "worker"]) {
    const image = await buildMultiArchImage({ seed: name, platforms: ["linux/amd64", "linux/arm64/v8"] });
    await pushImage(image, { registry: host, repository: `demo/${name}` }, "1.0", client);
    images.push(`${host}/demo/${name}:1.0`);
    pinned.push(`${host}/demo/${name}@${image.top.digest}`);
  }
  for (const name of ["tools", "db"]) {
    const image = await buildImage({ seed: name });
    await pushImage(image, { registry: host, repository: `demo/${name}` }, "1.0", client);
    images.push(`${host}/demo/${name}:1.0`);
    pinned.push(`${host}/demo/${name}@${image.top.digest}`);
  }
  client.close();
  const list = `${work}/images.txt`;
  await Deno.writeTextFile(list, `# demo images (hangar image-list format)\n${images.join("\n")}\n`);
  console.log(`pushed ${images.length} images (3 multi-arch, 2 single-arch); image list ${list}:`);
  console.log(await Deno.readTextFile(list));

  step("Inspect a multi-arch image (the linux/arm64 instance) and its raw index");
  await airlock(
    work,
    env,
    "inspect",
    "--tls-verify=false",
    "--override-arch",
    "arm64",
    `docker://${images[0]}`,
  );
  await airlock(work, env, "inspect", "--tls-verify=false", "--raw", `docker://${images[0]}`);
  console.log();

  step("Generate a key pair (scrypt + NaCl secretbox, as cosign and skopeo write it)");
  await Deno.writeTextFile(`${work}/passphrase.txt`, "demo-passphrase\n");
  await airlock(work, env, "generate-key-pair", "--passphrase-file", "passphrase.txt");

  step("registries.d of the demo: write sigstore attachments (.sig tags) everywhere");
  await Deno.mkdir(`${work}/registries.d`);
  await Deno.writeTextFile(
    `${work}/registries.d/default.yaml`,
    "default-docker:\n  use-sigstore-attachments: true\n",
  );
  console.log(await Deno.readTextFile(`${work}/registries.d/default.yaml`));

  const sign = [
    "sign",
    "-f",
    "images.txt",
    "-k",
    "cosign.key",
    "--sigstore-passphrase-file",
    "passphrase.txt",
    "--registries.d",
    "registries.d",
    "--tls-verify=false",
    "-j",
    "4",
  ];
  step("Sign every image: each platform manifest and each index, 4 jobs");
  const t0 = performance.now();
  if (await airlock(work, env, ...sign) !== 0) throw new Error("signing failed");
  console.log(
    `signed in ${Math.round(performance.now() - t0)} ms (process start and key decryption included)`,
  );

  step("Sign again: nothing is added, every signature is already there");
  if (await airlock(work, env, ...sign) !== 0) throw new Error("re-signing failed");

  step("The signatures written for demo/web (one .sig tag per signed manifest)");
  const tags = await (await fetch(`${registry.url}/v2/demo/web/tags/list`)).json() as { tags: string[] };
  for (const t of tags.tags.sort()) console.log(`  ${t}`);
  const sig = tags.tags.find((t) => t.endsWith(".sig"))!;
  await airlock(work, env, "inspect", "--tls-verify=false", "--raw", `docker://${host}/demo/web:${sig}`);
  console.log();

  const validate = [
    "sign",
    "validate",
    "-f",
    "images.txt",
    "-p",
    "cosign.pub",
    "--registries.d",
    "registries.d",
    "--tls-verify=false",
    "-j",
    "4",
  ];
  step("Validate every image as hangar's sign validate does: key, digest and identity (platforms by digest)");
  if (await airlock(work, env, ...validate) !== 0) throw new Error("validation failed");

  step("Validate as a podman/CRI-O node pulls: by tag and by digest, every platform, under its policy.json");
  const policy = {
    default: [{ type: "reject" }],
    transports: {
      docker: { [host]: [{ type: "sigstoreSigned", keyPath: `${work}/cosign.pub` }] },
    },
  };
  await Deno.writeTextFile(`${work}/policy.json`, JSON.stringify(policy, null, 2) + "\n");
  console.log(await Deno.readTextFile(`${work}/policy.json`));
  await Deno.writeTextFile(`${work}/pulls.txt`, [...images, ...pinned].join("\n") + "\n");
  const pulls = [
    "sign",
    "validate",
    "-f",
    "pulls.txt",
    "--policy",
    "policy.json",
    "--registries.d",
    "registries.d",
    "--tls-verify=false",
    "--failed",
    "pulls-failed.txt",
    "-j",
    "4",
  ];
  if (await airlock(work, env, ...pulls) !== 0) throw new Error("a pull by tag or by digest was refused");

  const verify = ["verify", "--key", "cosign.pub", "--insecure-ignore-tlog", "--tls-verify=false"];
  step("Verify the multi-arch tag as cosign would (the tag resolves to the index, which airlock signs too)");
  if (await airlock(work, env, ...verify, images[0]) !== 0) throw new Error("verification failed");
  console.log();

  step("Tamper: someone re-points demo/api:1.0 at an image nobody signed");
  const evil = await buildMultiArchImage({ seed: "tampered", platforms: ["linux/amd64", "linux/arm64/v8"] });
  const pushClient = new RegistryClient({ tlsVerify: false });
  await pushImage(evil, { registry: host, repository: "demo/api" }, "1.0", pushClient);
  pushClient.close();
  console.log(`demo/api:1.0 now names ${evil.top.digest}`);
  const rejected = await airlock(work, env, ...validate);
  console.log(
    `-> sign validate exit status ${rejected} (the failed list validate-failed.txt names the image)`,
  );
  const refused = await airlock(work, env, ...verify, images[1]);
  console.log(`-> verify exit status ${refused}`);
  if (rejected === 0 || refused === 0) throw new Error("the tampered image was accepted");
  console.log("\n\nDemo finished: the registry is stopped and its storage removed.");
} finally {
  await Deno.remove(work, { recursive: true });
}
