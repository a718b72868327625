/**
 * Go's parsers for flag and field values (`strconv.ParseBool`, `strconv.ParseInt(s, 0, 64)`,
 * `time.ParseDuration`), so that the CLI and the service accept what hangar's and cosign's flags accept.
 *
 * @module
 */
import { AirlockError } from "../errors.ts";

/**
 * Parses a Go `strconv.ParseBool` value, as pflag and hangar accept it (`1 t T TRUE true True 0 f F FALSE …`).
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` for any other value.
 */
export function parseGoBool(value: string): boolean {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(value)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(value)) return false;
  throw new AirlockError("INVALID_ARGUMENT", `invalid boolean value "${value}"`);
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a Go `time.ParseDuration` string (`10m`, `90s`, `1h30m`, `1.5s`, `0`) into milliseconds.
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` with Go's message for a malformed duration.
 */
export function parseGoDuration(s: string): number {
  if (s === "0") return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let rest = s;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    sign = rest.startsWith("-") ? -1 : 1;
    rest = rest.slice(1);
  }
  let total = 0;
  let pos = 0;
  while (pos < rest.length) {
    re.lastIndex = pos;
    const m = re.exec(rest);
    if (!m) throw new AirlockError("INVALID_ARGUMENT", `time: invalid duration "${s}"`);
    total += parseFloat(m[1]) * DURATION_UNITS[m[2]];
    pos = re.lastIndex;
  }
  if (rest.length === 0) throw new AirlockError("INVALID_ARGUMENT", `time: invalid duration "${s}"`);
  return sign * total;
}

/**
 * Parses an integer as Go's `strconv.ParseInt(s, 0, 64)` does (`10`, `0x10`, `0o17`, `0b11`, `017`).
 *
 * @throws {AirlockError} `INVALID_ARGUMENT` for anything else.
 */
export function parseGoInt(s: string): number {
  const m = /^([+-]?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)$/.exec(s);
  if (!m) throw new AirlockError("INVALID_ARGUMENT", `invalid integer "${s}"`);
  const body = m[2].replaceAll("_", "");
  let n: number;
  if (/^0[xX]/.test(body)) n = parseInt(body.slice(2), 16);
  else if (/^0[oO]/.test(body)) n = parseInt(body.slice(2), 8);
  else if (/^0[bB]/.test(body)) n = parseInt(body.slice(2), 2);
  else if (body.length > 1 && body.startsWith("0")) n = parseInt(body.slice(1), 8);
  else n = parseInt(body, 10);
  return m[1] === "-" ? -n : n;
}
