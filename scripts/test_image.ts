/**
 * `deno task test-image REF [--tls-verify=true]`: pushes a tiny two-platform image (`linux/amd64`,
 * `linux/arm64/v8`: an OCI index, two manifests, their configs and one small layer each, built in memory by the
 * test bed) to `REF`, a tagged reference such as `127.0.0.1:5000/try/hello:1.0`. For trying airlock on a local
 * registry without any image at hand (README, "Try it"). Plain HTTP is allowed unless `--tls-verify=true`.
 *
 * @module
 */
import { buildMultiArchImage, pushImage } from "../tests/testbed/images.ts";
import { RegistryClient } from "../core/registry/client.ts";
import { formatReference, parseReference } from "../core/reference.ts";
import { errorMessage, isAirlockError } from "../core/errors.ts";

async function main(args: string[]): Promise<number> {
  const refs = args.filter((a) => !a.startsWith("--"));
  const flags = args.filter((a) => a.startsWith("--"));
  const unknown = flags.filter((f) => f !== "--tls-verify=true" && f !== "--tls-verify=false");
  if (refs.length !== 1 || unknown.length > 0) {
    console.error("usage: deno task test-image HOST[:PORT]/REPOSITORY:TAG [--tls-verify=true]");
    return 2;
  }
  const client = new RegistryClient({ tlsVerify: flags.includes("--tls-verify=true") });
  try {
    const ref = parseReference(refs[0]);
    if (ref.tag === undefined || ref.digest !== undefined) {
      console.error(`test-image: "${refs[0]}" must name a tag (HOST/REPOSITORY:TAG)`);
      return 2;
    }
    const image = await buildMultiArchImage({ seed: formatReference(ref) });
    // A registry started a moment ago (`docker-registry serve … &`) may not listen yet: retry for a while.
    const until = Date.now() + 15_000;
    let digest: string;
    for (;;) {
      try {
        digest = await pushImage(image, ref, ref.tag, client);
        break;
      } catch (e) {
        if (!isAirlockError(e, "REGISTRY_UNREACHABLE") || Date.now() > until) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    console.log(
      `pushed ${formatReference(ref)} (${digest}): ${image.platforms.map((p) => p.platform).join(", ")}`,
    );
    return 0;
  } catch (e) {
    console.error(`test-image: ${errorMessage(e)}`);
    return 1;
  } finally {
    client.close();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
