/**
 * `docker-credential-*` helpers (Docker's `credsStore` / `credHelpers`): run with a bounded time, the server URL
 * on stdin, the answer parsed strictly; the secret they print never reaches a message.
 *
 * @module
 */
import { AirlockError, errorMessage } from "../errors.ts";
import type { CredentialOptions } from "./credentials.ts";
import { definedEntries, envOf, join } from "./credential_files.ts";

// --- helpers -----------------------------------------------------------------------------------------------------

interface HelperContext {
  readonly opts: CredentialOptions;
  /** The file that named the helper, for messages. */
  readonly configuredIn: string;
  /** A secret sent to the helper, scrubbed from any message. */
  readonly secret?: string;
}

/**
 * Runs `docker-credential-<helper> <action>` with `input` on stdin. Returns stdout, or `undefined` when the
 * helper says the credentials are not found.
 */
export async function runHelper(
  helper: string,
  action: "get" | "store" | "erase",
  input: string,
  ctx: HelperContext,
): Promise<string | undefined> {
  const name = `docker-credential-${helper}`;
  if (helper === "" || helper.includes("/")) {
    throw new AirlockError(
      "CREDENTIALS",
      `invalid credential helper name "${helper}" in ${ctx.configuredIn}`,
    );
  }
  const executable = findExecutable(name, envOf(ctx.opts, "PATH") ?? "");
  if (executable === undefined) {
    throw new AirlockError(
      "CREDENTIALS",
      `credential helper "${name}" (named in ${ctx.configuredIn}) was not found in $PATH`,
    );
  }
  let output: Deno.CommandOutput;
  try {
    const child = new Deno.Command(executable, {
      args: [action],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: ctx.opts.env ? definedEntries(ctx.opts.env) : undefined,
      signal: AbortSignal.timeout(HELPER_TIMEOUT_MS),
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(input));
    await writer.close();
    output = await child.output();
  } catch (e) {
    throw new AirlockError("CREDENTIALS", `running credential helper "${name}": ${errorMessage(e)}`, {
      cause: e,
    });
  }
  const dec = new TextDecoder();
  const stdout = dec.decode(output.stdout);
  if (output.success) return stdout;
  const text = stdout.trim() || dec.decode(output.stderr).trim();
  if (/credentials not found/i.test(text)) return undefined;
  let firstLine = text.split("\n")[0].slice(0, 200);
  if (ctx.secret) firstLine = firstLine.replaceAll(ctx.secret, "***");
  throw new AirlockError(
    "CREDENTIALS",
    `credential helper "${name}" ${action} failed (exit ${output.code})${firstLine ? `: ${firstLine}` : ""}`,
  );
}

const HELPER_TIMEOUT_MS = 60_000;

function findExecutable(name: string, pathVar: string): string | undefined {
  for (const dir of pathVar.split(Deno.build.os === "windows" ? ";" : ":")) {
    if (dir === "") continue;
    for (
      const candidate of Deno.build.os === "windows"
        ? [`${dir}\\${name}.exe`, `${dir}\\${name}`]
        : [join(dir, name)]
    ) {
      try {
        const st = Deno.statSync(candidate);
        if (st.isFile && (Deno.build.os === "windows" || ((st.mode ?? 0) & 0o111) !== 0)) return candidate;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}
