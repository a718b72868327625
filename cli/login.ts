/**
 * `airlock login REGISTRY` / `airlock logout REGISTRY`: the containers `auth.json` file, as podman keeps it.
 *
 * @module
 */
import type { Command } from "commander";
import { AirlockError } from "../core/errors.ts";
import { login, logout, logoutAll } from "../core/registry/credentials.ts";
import {
  addCommandTimeoutFlag,
  addRegistryFlags,
  clientFor,
  type CommandTimeoutFlags,
  type GlobalFlags,
  parseTimeoutFlag,
  type RegistryFlags,
  runCommand,
} from "./common.ts";
import { withDeadline } from "../core/pool.ts";
import { terminalPrompt } from "../backends/passphrase.ts";

interface LoginFlags extends RegistryFlags, CommandTimeoutFlags {
  username?: string;
  password?: string;
  passwordStdin?: boolean;
  getLogin?: boolean;
}

/**
 * Registers `login` and `logout` on the program.
 */
export function registerLogin(program: Command): void {
  addCommandTimeoutFlag(addRegistryFlags(
    program.command("login")
      .description("log in to a registry: check the credentials and store them in auth.json (mode 0600)")
      .argument("<registry>", "registry host[:port]")
      .option("-u, --username <user>", "user name")
      .option(
        "-p, --password <password>",
        "password (insecure: visible in the process list; prefer --password-stdin)",
      )
      .option("--password-stdin", "read the password from standard input"),
  )).action((registry: string, flags: LoginFlags, cmd: Command) =>
    runCommand(cmd.optsWithGlobals<GlobalFlags>(), async (log) => {
      const host = normaliseRegistry(registry);
      let username = flags.username;
      let password: string | undefined;
      if (flags.password !== undefined) {
        if (flags.passwordStdin) {
          throw new AirlockError(
            "INVALID_ARGUMENT",
            "--password and --password-stdin are mutually exclusive",
          );
        }
        log.warn(
          "Using --password on the command line is insecure: other users can see it. Use --password-stdin.",
        );
        password = flags.password;
      } else if (flags.passwordStdin) {
        password = await readStdinLine();
      }
      const interactive = Deno.stdin.isTerminal();
      if (username === undefined) {
        if (!interactive) throw new AirlockError("INVALID_ARGUMENT", "username not provided: use --username");
        username = (await promptLine("Username: ")).trim();
      }
      if (password === undefined) {
        if (!interactive) {
          throw new AirlockError("INVALID_ARGUMENT", "password not provided: use --password-stdin");
        }
        password = await terminalPrompt("Password: ");
      }
      if (!username) throw new AirlockError("INVALID_ARGUMENT", "username must not be empty");
      const credential = { username, password };
      // Check the credentials against the registry before storing them.
      const client = clientFor(flags, () => Promise.resolve(credential));
      try {
        await withDeadline(parseTimeoutFlag(flags.timeout), (signal) => client.ping(host, { signal }));
      } finally {
        client.close();
      }
      const where = await login(host, credential, { authFile: flags.authfile });
      log.info(`Login Succeeded! (credentials stored in ${where})`);
    })
  );

  program.command("logout")
    .description("remove the stored credentials of a registry")
    .argument("[registry]", "registry host[:port]")
    .option("-a, --all", "remove the credentials of every registry")
    .option("--authfile <file>", "registry credentials file")
    .action((registry: string | undefined, flags: { all?: boolean; authfile?: string }, cmd: Command) =>
      runCommand(cmd.optsWithGlobals<GlobalFlags>(), async (log) => {
        if (flags.all) {
          const where = await logoutAll({ authFile: flags.authfile });
          log.info(`Removed login credentials for all registries (${where})`);
          return;
        }
        if (!registry) throw new AirlockError("INVALID_ARGUMENT", "registry not provided (or use --all)");
        const host = normaliseRegistry(registry);
        await logout(host, { authFile: flags.authfile });
        log.info(`Removed login credentials for ${host}`);
      })
    );
}

/** `https://host:port/` and `host:port/path` → `host:port`; `index.docker.io` → `docker.io`. */
function normaliseRegistry(input: string): string {
  let s = input.replace(/^[a-z]+:\/\//i, "");
  s = s.split("/")[0];
  if (s === "") throw new AirlockError("INVALID_ARGUMENT", `invalid registry "${input}"`);
  return s === "index.docker.io" || s === "registry-1.docker.io" ? "docker.io" : s;
}

async function readStdinLine(): Promise<string> {
  return (await new Response(Deno.stdin.readable).text()).replace(/\r?\n$/, "");
}

async function promptLine(message: string): Promise<string> {
  await Deno.stdout.write(new TextEncoder().encode(message));
  const buf = new Uint8Array(1024);
  const n = await Deno.stdin.read(buf);
  return new TextDecoder().decode(buf.subarray(0, n ?? 0)).replace(/\r?\n$/, "");
}
