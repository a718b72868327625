/**
 * Installs the test KMS plugin `sigstore-kms-testkms` ({@link ./testdata/sigstore_kms_testkms.ts}) into a
 * directory, as a shell wrapper that runs the script with this Deno. Put the directory on PATH.
 *
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The plugin's script. */
export const TESTKMS_SCRIPT: string = fileURLToPath(
  new URL("./testdata/sigstore_kms_testkms.ts", import.meta.url),
);

/**
 * Writes `<binDir>/sigstore-kms-testkms` (mode 0755) and returns its path.
 *
 * @example
 * ```ts
 * await installTestKms(join(tmp.path, "bin"));
 * ```
 */
export async function installTestKms(binDir: string): Promise<string> {
  await Deno.mkdir(binDir, { recursive: true });
  const path = join(binDir, "sigstore-kms-testkms");
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  await Deno.writeTextFile(
    path,
    `#!/bin/sh\nexec ${
      q(Deno.execPath())
    } run --quiet --no-config --no-lock --allow-read --allow-write --allow-env ${q(TESTKMS_SCRIPT)} "$@"\n`,
    { mode: 0o755 },
  );
  await Deno.chmod(path, 0o755);
  return path;
}

/**
 * Creates a P-256 key file for the plugin (through the plugin's own `createKey`) and returns `testkms://<file>`.
 *
 * @example
 * ```ts
 * const ref = await makeTestKmsKey(tmp.path, binDir);
 * ```
 */
export async function makeTestKmsKey(dir: string, binDir: string, name = "kms-key.json"): Promise<string> {
  const file = join(dir, name);
  const out = await new Deno.Command(join(binDir, "sigstore-kms-testkms"), {
    args: [
      "v1",
      JSON.stringify({
        initOptions: { protocolVersion: "v1", keyResourceID: file, hashFunc: 5 },
        methodName: "createKey",
        createKey: { algorithm: "ecdsa-p256" },
      }),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const resp = JSON.parse(new TextDecoder().decode(out.stdout));
  if (!resp.createKey) {
    throw new Error(`createKey failed: ${JSON.stringify(resp)} ${new TextDecoder().decode(out.stderr)}`);
  }
  return `testkms://${file}`;
}
