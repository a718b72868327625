/**
 * pflag's flag syntax on every command (`cli/flag_syntax.ts`), checked on the real command tree of `buildProgram()`
 * with the actions replaced by a probe that records the parsed flags and operands: every boolean flag of every
 * command accepts `--flag`, `--flag=true`, `--flag=false` (and its short form `-x`, `-x=false`), never takes the next
 * argument as its value, and `--flag false` is refused with a hint. Unknown flags name the flag meant; numeric and
 * duration flags name themselves in their errors; `-o json` is not taken for a failed list's name.
 *
 * The flags are enumerated from the program itself, so a boolean flag added later is covered without editing this
 * file.
 *
 * @module
 */
import type { Command, Option } from "commander";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "../assert.ts";
import { buildProgram } from "../../cli.ts";
import { normaliseArgs } from "../../cli/flag_syntax.ts";
import { airlock, show, tempDir } from "../testbed/mod.ts";

/** What a probed run parsed: the flags of the command (with the globals) and its operands. */
interface Parsed {
  flags: Record<string, unknown>;
  operands: string[];
}

/** Every command below (and including) `cmd`, with the names leading to it. */
function commands(cmd: Command, path: string[] = []): { cmd: Command; path: string[] }[] {
  return [{ cmd, path }, ...cmd.commands.flatMap((c) => commands(c, [...path, c.name()]))];
}

/** A program whose actions record what they got instead of running; commander errors throw. */
function probedProgram(): { program: Command; last: () => Parsed } {
  const program = buildProgram();
  let parsed: Parsed | undefined;
  for (const { cmd } of commands(program)) {
    cmd.exitOverride();
    cmd.configureOutput({ writeOut: () => {}, writeErr: () => {} });
    cmd.action((...args: unknown[]) => {
      const c = args[args.length - 1] as Command;
      parsed = { flags: c.optsWithGlobals(), operands: c.args };
    });
  }
  return {
    program,
    last: () => {
      assert(parsed, "no action ran");
      return parsed;
    },
  };
}

/** Parses `args` (after pflag normalisation) with the probed program; returns what the action got. */
async function parse(args: string[]): Promise<Parsed> {
  const { program, last } = probedProgram();
  await program.parseAsync(normaliseArgs(program, args), { from: "user" });
  return last();
}

/** The boolean flags of every runnable command (its own, and the program's global ones), with operands to give. */
function booleanFlags(): { path: string[]; option: Option; operands: string[] }[] {
  const program = buildProgram();
  const out: { path: string[]; option: Option; operands: string[] }[] = [];
  for (const { cmd, path } of commands(program)) {
    if (path.length === 0 || path.join(" ") === "download") continue; // the program, and a command without action
    // Mandatory options (public-key --key) first, then the operands a command requires.
    const operands = [
      ...cmd.options.filter((o) => o.mandatory).map((o) => `${o.long}=value`),
      ...cmd.registeredArguments.filter((a) => a.required).map(() => "operand"),
    ];
    const options = [...cmd.options, ...program.options].filter((o) =>
      o.long !== "--version" && ((o.optional && !o.required) || o.isBoolean())
    );
    for (const option of options) out.push({ path, option, operands });
  }
  return out;
}

Deno.test("every boolean flag of every command: --flag, --flag=true, --flag=false, -x, -x=false", async () => {
  const flags = booleanFlags();
  // The flags cosign's and hangar's documentation use must be among them.
  for (
    const [cmd, flag] of [
      ["verify", "--insecure-ignore-tlog"],
      ["verify", "--allow-http-registry"],
      ["verify", "--allow-insecure-registry"],
      ["verify-attestation", "--allow-http-registry"],
      ["attestation", "--allow-http-registry"],
      ["attest", "--tlog-upload"],
      ["attest", "--yes"],
      ["sign-blob", "--tlog-upload"],
      ["verify-blob", "--insecure-ignore-tlog"],
      ["sign", "--sign-index"],
      ["validate", "--require-index-signature"],
      ["mirror", "--remove-signatures"],
      ["inspect", "--raw"],
    ]
  ) {
    assert(
      flags.some((f) => f.path[f.path.length - 1] === cmd && f.option.long === flag),
      `${cmd} ${flag} missing from the program`,
    );
  }
  let checked = 0;
  for (const { path, option, operands } of flags) {
    const long = option.long!;
    const key = option.attributeName();
    const what = `${path.join(" ")} ${long}`;
    // The flag comes before the operands: a bare boolean must never take the next argument as its value.
    const forms: [string[], boolean][] = [
      [[long], true],
      [[`${long}=true`], true],
      [[`${long}=false`], false],
      [[`${long}=0`], false],
      [[`${long}=True`], true],
      [[long, `${long}=false`], false], // the last one wins, as in pflag
    ];
    if (option.short) forms.push([[option.short], true], [[`${option.short}=false`], false]);
    for (const [given, expected] of forms) {
      const r = await parse([...path, ...given, ...operands]);
      assertEquals(r.flags[key], expected, `${what}: ${given.join(" ")}`);
      assertEquals(
        r.operands,
        operands.filter((o) => o === "operand"),
        `${what}: ${given.join(" ")} took an operand`,
      );
    }
    for (const word of ["false", "true"]) {
      const e = await parse([...path, long, word, ...operands]).then(() => undefined, (e) => e as Error);
      assert(e, `${what} ${word} was accepted`);
      assertEquals(
        e.message,
        `${long} ${word}: a boolean flag takes its value after '=', write ${long}=${word}`,
        what,
      );
    }
    const bad = await parse([...path, `${long}=maybe`, ...operands]).then(() => undefined, (e) => e as Error);
    assertEquals(bad?.message, `${long}: invalid boolean value "maybe" (use true or false)`, what);
    checked++;
  }
  assert(checked >= 30, `only ${checked} boolean flags found`);
});

Deno.test("short flags combine as in pflag; value flags take the next argument or the rest of the cluster", async () => {
  const a = await parse(["attest", "-y", "--key=k", "img"]);
  assertEquals([a.flags.yes, a.flags.key, a.operands], [true, "k", ["img"]]);
  const b = await parse(["sign", "-j8", "-f", "list.txt", "-a=amd64"]);
  assertEquals([b.flags.jobs, b.flags.file, b.flags.arch], ["8", "list.txt", ["amd64"]]);
  // A value that looks like a flag is still the value of a value flag.
  const c = await parse(["verify", "--key", "--odd-file-name", "img"]);
  assertEquals([c.flags.key, c.operands], ["--odd-file-name", ["img"]]);
  // The global flags work before and after the command name, with values.
  const d = await parse(["--debug=false", "verify", "--hide-log-time", "img"]);
  assertEquals([d.flags.debug, d.flags.hideLogTime], [false, true]);
  // Everything after `--` is left alone.
  const e = await parse(["verify", "--", "--not-a-flag"]);
  assertEquals(e.operands, ["--not-a-flag"]);
});

Deno.test("unknown flags: three dashes, one dash, misspelled in --x=value form name the flag meant", () => {
  const program = buildProgram();
  const cases: [string[], string][] = [
    [
      ["verify", "---insecure-ignore-tlog", "img"],
      "unknown flag: ---insecure-ignore-tlog (did you mean --insecure-ignore-tlog?)",
    ],
    [
      ["verify", "--alow-http-registry=true", "img"],
      "unknown flag: --alow-http-registry (did you mean --allow-http-registry?)",
    ],
    [
      ["verify", "--insecure-ignore-tlgo", "img"],
      "unknown flag: --insecure-ignore-tlgo (did you mean --insecure-ignore-tlog?)",
    ],
    [
      ["verify", "-insecure-ignore-tlog", "img"],
      "unknown shorthand flag 'i' in -insecure-ignore-tlog (did you mean --insecure-ignore-tlog?)",
    ],
    [["sign", "--sign-indx=false"], "unknown flag: --sign-indx (did you mean --sign-index?)"],
    [["sign", "validate", "---require-index-signature"], "(did you mean --require-index-signature?)"],
    [["verify", "--completely-different=1", "img"], "unknown flag: --completely-different"],
  ];
  for (const [args, message] of cases) {
    const e = assertThrows(() => normaliseArgs(program, args));
    assertStringIncludes(e.message, message, args.join(" "));
    if (!message.includes("did you mean")) assert(!e.message.includes("did you mean"), e.message);
  }
});

Deno.test("CLI: flag errors are one line, exit 1; numbers and durations name their flag; -o json is refused", async () => {
  await using tmp = await tempDir("airlock-flags-");
  const list = `${tmp.path}/list.txt`;
  await Deno.writeTextFile(list, "127.0.0.1:1/a/b:1\n");
  const cases: [string[], string][] = [
    [
      ["verify", "---insecure-ignore-tlog", "img"],
      "airlock: unknown flag: ---insecure-ignore-tlog (did you mean",
    ],
    [["verify", "--insecure-ignore-tlog", "false", "img"], "write --insecure-ignore-tlog=false"],
    [["sign", "-f", list, "--key", "k", "--jobs", "abc"], `--jobs: invalid integer "abc"`],
    [["sign", "validate", "-f", list, "-p", "k", "-j", "4x"], `--jobs: invalid integer "4x"`],
    [
      ["mirror", "-f", list, "-d", "127.0.0.1:1", "--timeout", "10q"],
      `--timeout: time: invalid duration "10q"`,
    ],
    [["serve", "--key", "k", "--token-file", "t", "--max-body", "1e6"], `--max-body: invalid integer "1e6"`],
    [
      ["serve", "--key", "k", "--token-file", "t", "--shutdown-timeout", "x"],
      "--shutdown-timeout: time: invalid",
    ],
    [
      ["serve", "--key", "k", "--token-file", "t", "--rate-limit", "fast"],
      `--rate-limit: invalid rate limit "fast"`,
    ],
    [
      ["sign", "validate", "-f", list, "-p", "k", "-o", "json"],
      `"json" is an output format, not a file name`,
    ],
    [["sign", "-f", list, "--key", "k", "-o", "text"], "use --output to choose the output format"],
    [["mirror", "-f", list, "-d", "127.0.0.1:1", "-o", "JSON"], `"JSON" is an output format`],
  ];
  await Promise.all(cases.map(async ([args, message]) => {
    const r = await airlock(args, { home: tmp.path, stripLockNotice: true });
    assertEquals(r.code, 1, show(r));
    assertStringIncludes(r.stderr, message, show(r));
    assertEquals(r.stderr.trim().split("\n").length, 1, show(r));
    for (const name of ["json", "text", "JSON"]) assert(!(await exists(`${tmp.path}/${name}`)), show(r));
  }));
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
