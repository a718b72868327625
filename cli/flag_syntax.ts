/**
 * pflag's flag syntax on top of commander, so that the commands hangar's and cosign's documentation print run
 * unchanged (spf13/pflag, which cobra, hangar and cosign use):
 *
 * - every boolean flag accepts `--flag`, `--flag=true` and `--flag=false` (any Go `strconv.ParseBool` value after
 *   `=`); the value never comes from the next argument, so `--insecure-ignore-tlog IMAGE` is the flag and IMAGE;
 *   `--flag false` (with a space) is refused with a one-line hint to write `--flag=false`;
 * - short flags combine as in pflag: `-y`, `-y=false`, `-j8`, `-j 8`, `-yj8`;
 * - an unknown flag is an error naming the flag meant when one is close: `---insecure-ignore-tlog` (three dashes, as
 *   some documentation prints it), `--alow-http-registry=true`, `-insecure-ignore-tlog`.
 *
 * {@linkcode adoptPflagBooleans} turns every boolean option of the program into one that takes its value only after
 * `=`; {@linkcode normaliseArgs} rewrites the command line for commander with the options of the command it names
 * (bare boolean flags become `--flag=true`, short flags their long form) and reports the errors above.
 *
 * @module
 */
import type { Command, Option } from "commander";
import { parseGoBool } from "../core/encoding/go_values.ts";
import { optionalBool, usageError } from "./common.ts";

/** Words a user may put after a boolean flag with a space, meaning its value (pflag takes them as arguments). */
const SPACED_BOOL_WORDS = new Set(["true", "True", "TRUE", "false", "False", "FALSE"]);

/**
 * Makes every boolean option of `program` and its subcommands (all but `--version`) a Go boolean that takes its
 * value only as `--flag=value`, as pflag's bool flags do. Run it once the commands are registered, and give
 * commander only arguments that went through {@linkcode normaliseArgs}.
 *
 * @example
 * ```ts
 * adoptPflagBooleans(program);
 * await program.parseAsync(normaliseArgs(program, Deno.args), { from: "user" });
 * ```
 */
export function adoptPflagBooleans(program: Command): void {
  for (const cmd of commandTree(program)) {
    for (const option of cmd.options) {
      if (!option.isBoolean() || option.long === "--version") continue;
      option.optional = true;
      option.argParser(optionalBool);
    }
  }
}

/** `cmd` and every command below it. */
function commandTree(cmd: Command): Command[] {
  return [cmd, ...cmd.commands.flatMap(commandTree)];
}

/**
 * A boolean flag: a commander boolean, or an option with an optional (`[bool]`) value. (`<os/arch[/variant]>` sets
 * both `required` and `optional`: a value flag.)
 */
function takesBool(option: Option): boolean {
  return (option.optional && !option.required) || option.isBoolean();
}

/** The options known where a flag appears: the command's own, then its parents' (the program's are global). */
function findOption(chain: readonly Command[], flag: string): Option | undefined {
  for (let i = chain.length - 1; i >= 0; i--) {
    const found = chain[i].options.find((o) => o.long === flag || o.short === flag);
    if (found) return found;
  }
  return undefined;
}

/**
 * Rewrites a command line for commander with pflag's syntax (see the module documentation): the command path is
 * followed through `program`'s subcommands; boolean flags become `--flag=true` / `--flag=VALUE`, short flags their
 * long names; value flags and their values are passed on as written; everything after `--` is left alone.
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` for an unknown flag (naming the one probably meant), a boolean given
 *   with a space (`--flag false`) or an invalid boolean value.
 */
export function normaliseArgs(program: Command, args: readonly string[]): string[] {
  const out: string[] = [];
  const chain: Command[] = [program];
  let operandSeen = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      out.push(...args.slice(i));
      break;
    }
    if (arg === "-h" || arg === "--help") {
      out.push(arg);
      continue;
    }
    if (!arg.startsWith("-") || arg === "-") {
      const leaf = chain[chain.length - 1];
      const sub = operandSeen
        ? undefined
        : leaf.commands.find((c) => c.name() === arg || c.aliases().includes(arg));
      if (sub) chain.push(sub);
      else operandSeen = true;
      out.push(arg);
      continue;
    }
    const next = args[i + 1];
    const consumed = arg.startsWith("--")
      ? longFlag(chain, arg, next, out)
      : shortFlags(chain, arg, next, out);
    i += consumed;
  }
  return out;
}

/** One `--name[=value]` argument; returns how many following arguments it consumed (its value: 0 or 1). */
function longFlag(chain: readonly Command[], arg: string, next: string | undefined, out: string[]): number {
  const eq = arg.indexOf("=");
  const flag = eq < 0 ? arg : arg.slice(0, eq);
  const value = eq < 0 ? undefined : arg.slice(eq + 1);
  const option = flag.startsWith("---") ? undefined : findOption(chain, flag);
  if (!option) throw unknownFlag(chain, flag);
  if (option.isBoolean()) {
    out.push(flag); // `--version`, left as commander's own boolean
    return 0;
  }
  if (!takesBool(option)) {
    out.push(arg);
    if (value !== undefined || next === undefined) return 0;
    out.push(next);
    return 1;
  }
  out.push(`${flag}=${boolValue(flag, value, next)}`);
  return 0;
}

/** One `-abc` cluster of short flags, as pflag reads it; returns how many following arguments it consumed. */
function shortFlags(chain: readonly Command[], arg: string, next: string | undefined, out: string[]): number {
  for (let j = 1; j < arg.length; j++) {
    const short = `-${arg[j]}`;
    const option = findOption(chain, short);
    if (!option) {
      // `-insecure-ignore-tlog`: a long flag written with one dash.
      if (arg.length > 2 && findOption(chain, `-${arg}`)) {
        throw usageError(`unknown shorthand flag '${arg[j]}' in ${arg} (did you mean -${arg}?)`);
      }
      throw usageError(`unknown shorthand flag '${arg[j]}' in ${arg}`);
    }
    const name = option.long ?? short;
    const rest = arg.slice(j + 1);
    if (takesBool(option)) {
      if (rest.startsWith("=")) {
        out.push(`${name}=${boolValue(short, rest.slice(1), undefined)}`);
        return 0;
      }
      out.push(`${name}=${boolValue(short, undefined, rest === "" ? next : undefined)}`);
      continue;
    }
    // A value flag takes the rest of the cluster (`-j8`, `-j=8`), else the next argument.
    if (rest !== "") {
      out.push(`${name}=${rest.startsWith("=") ? rest.slice(1) : rest}`);
      return 0;
    }
    out.push(name);
    if (next === undefined) return 0;
    out.push(next);
    return 1;
  }
  return 0;
}

/** The value of a boolean flag: `true` when bare; checked when given; a spaced `true`/`false` is refused. */
function boolValue(flag: string, value: string | undefined, next: string | undefined): string {
  if (value === undefined) {
    if (next !== undefined && SPACED_BOOL_WORDS.has(next)) {
      throw usageError(
        `${flag} ${next}: a boolean flag takes its value after '=', write ${flag}=${next.toLowerCase()}`,
      );
    }
    return "true";
  }
  try {
    parseGoBool(value);
  } catch {
    throw usageError(`${flag}: invalid boolean value "${value}" (use true or false)`);
  }
  return value;
}

/** The error for a flag no command of the chain knows, naming the closest known flag when one is close. */
function unknownFlag(chain: readonly Command[], flag: string): Error {
  const name = flag.replace(/^-+/, "");
  const known = chain.flatMap((c) => c.options.flatMap((o) => (o.long ? [o.long.slice(2)] : [])));
  known.push("help");
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  const close = best !== undefined && bestDistance <= Math.max(1, Math.floor(best.length / 4));
  return usageError(`unknown flag: ${flag}${close ? ` (did you mean --${best}?)` : ""}`);
}

/** Damerau-Levenshtein distance (optimal string alignment): insertions, deletions, substitutions, swaps. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}
