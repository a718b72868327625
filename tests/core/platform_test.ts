import { AirlockError } from "../../core/errors.ts";
import {
  allowsPlatform,
  DEFAULT_ARCH_LIST,
  DEFAULT_OS_LIST,
  formatPlatform,
  parseCsvList,
  type PlatformFilter,
} from "../../core/platform.ts";
import { assert, assertEquals, assertNotEquals, assertThrows } from "../assert.ts";

const hangarDefault: PlatformFilter = { arch: ["amd64", "arm64"], os: ["linux"], variant: [] };

Deno.test("allowsPlatform: hangar's default filter", () => {
  assert(allowsPlatform(hangarDefault, { architecture: "amd64", os: "linux" }));
  assert(allowsPlatform(hangarDefault, { architecture: "arm64", os: "linux", variant: "v8" }));
  assert(!allowsPlatform(hangarDefault, { architecture: "arm", os: "linux", variant: "v7" }));
  assert(!allowsPlatform(hangarDefault, { architecture: "s390x", os: "linux" }));
  assert(!allowsPlatform(hangarDefault, { architecture: "amd64", os: "windows" }));
  // attestation entries are excluded by default
  assert(!allowsPlatform(hangarDefault, { architecture: "unknown", os: "unknown" }));
  // exact and case-sensitive
  assert(!allowsPlatform(hangarDefault, { architecture: "AMD64", os: "linux" }));
  assert(!allowsPlatform(hangarDefault, { architecture: "amd64", os: "Linux" }));
});

Deno.test("allowsPlatform: empty values pass, missing platform is ('','','')", () => {
  assert(allowsPlatform(hangarDefault, { architecture: "", os: "" }));
  assert(allowsPlatform(hangarDefault, { architecture: "amd64", os: "" }));
  assert(allowsPlatform(hangarDefault, { architecture: "", os: "linux" }));
  assert(!allowsPlatform(hangarDefault, { architecture: "", os: "darwin" }));
  assert(allowsPlatform(hangarDefault, {}));
  assert(allowsPlatform(hangarDefault, undefined));
  assert(allowsPlatform(hangarDefault));
});

Deno.test("allowsPlatform: an empty set means no filtering for that part", () => {
  const noArch: PlatformFilter = { arch: [], os: ["linux"], variant: [] };
  assert(allowsPlatform(noArch, { architecture: "unknown", os: "linux" }));
  assert(!allowsPlatform(noArch, { architecture: "unknown", os: "unknown" }));
  const none: PlatformFilter = { arch: [], os: [], variant: [] };
  assert(allowsPlatform(none, { architecture: "unknown", os: "unknown" }));
  const v8: PlatformFilter = { arch: [], os: [], variant: ["v8"] };
  assert(allowsPlatform(v8, { architecture: "arm64", os: "linux", variant: "v8" }));
  assert(!allowsPlatform(v8, { architecture: "arm", os: "linux", variant: "v7" }));
  assert(allowsPlatform(v8, { architecture: "amd64", os: "linux" }));
  // a set holding only "" is not empty: it lets only empty values through
  const emptyString: PlatformFilter = { arch: [""], os: [], variant: [] };
  assert(!allowsPlatform(emptyString, { architecture: "amd64", os: "linux" }));
});

Deno.test("parseCsvList: pflag StringSlice semantics", () => {
  const defaults = ["amd64", "arm64"];
  const noUse = parseCsvList([], defaults);
  assertEquals(noUse, ["amd64", "arm64"]);
  noUse.push("x");
  assertEquals(defaults, ["amd64", "arm64"]); // a copy, not the default array
  assertEquals(parseCsvList(["s390x"], defaults), ["s390x"]); // first use replaces
  assertEquals(parseCsvList(["amd64", "arm64"], defaults), ["amd64", "arm64"]); // later uses append
  assertEquals(parseCsvList(["amd64,arm", "ppc64le"], defaults), ["amd64", "arm", "ppc64le"]);
  assertEquals(parseCsvList([""], defaults), []); // --arch="": no filtering
  assertEquals(parseCsvList(["", "amd64"], defaults), ["amd64"]);
  assertEquals(parseCsvList(["amd64, arm64"], defaults), ["amd64", " arm64"]); // no trimming
  assertEquals(parseCsvList(["a,"], defaults), ["a", ""]);
  assertEquals(parseCsvList([",a"], defaults), ["", "a"]);
  assertEquals(parseCsvList(['"a,b",c'], defaults), ["a,b", "c"]);
  assertEquals(parseCsvList(['"a""b"'], defaults), ['a"b']);
  assertEquals(parseCsvList(['"",x'], defaults), ["", "x"]);
  assertEquals(parseCsvList(["a\r\n"], defaults), ["a"]);
  assertEquals(parseCsvList(["a,b\nc,d"], defaults), ["a", "b"]); // one record per value
  assertEquals(parseCsvList(['"a\nb",c'], defaults), ["a\nb", "c"]);
  assertEquals(parseCsvList([], DEFAULT_ARCH_LIST), ["amd64", "arm64"]);
  assertEquals(parseCsvList([], DEFAULT_OS_LIST), ["linux"]);
});

Deno.test("parseCsvList: invalid CSV is an INVALID_ARGUMENT error naming the flag", () => {
  const e = assertThrows(() => parseCsvList(['a"b'], [], "--arch"), AirlockError, 'bare "');
  assertEquals(e.code, "INVALID_ARGUMENT");
  assert(e.message.includes("--arch"));
  assertThrows(() => parseCsvList(['a, "b"'], []), AirlockError, 'bare "');
  assertThrows(() => parseCsvList(['"a'], []), AirlockError, "quoted-field");
  assertThrows(() => parseCsvList(['"a"b'], []), AirlockError, "quoted-field");
});

Deno.test("formatPlatform", () => {
  assertEquals(formatPlatform({ architecture: "arm64", os: "linux", variant: "v8" }), "linux/arm64/v8");
  assertEquals(formatPlatform({ architecture: "amd64", os: "linux" }), "linux/amd64");
  assertEquals(formatPlatform({ architecture: "amd64", os: "linux", variant: "" }), "linux/amd64");
  assertNotEquals(formatPlatform({ architecture: "amd64", os: "linux" }), "amd64/linux");
  assertEquals(formatPlatform({}), "/");
});
