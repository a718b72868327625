/**
 * SoftHSM2 tokens for tests (spec/testbed.md §3): a token directory and its own `softhsm2.conf` in a temporary
 * directory (never the machine's configuration), tokens initialised with `softhsm2-util`, keys generated and
 * public keys read back with `pkcs11-tool` (OpenSC).
 *
 * SoftHSM2 reads `SOFTHSM2_CONF` when the module is initialised. Child processes get it through
 * {@linkcode SoftHsm.env}; for the module loaded into the test process itself, {@linkcode startSoftHsm} sets
 * it in this process's environment and restores the previous value on disposal (tests run one file at a time
 * in a process, so one SoftHSM2 directory per test file, with as many tokens as needed).
 *
 * @example
 * ```ts
 * await using hsm = await startSoftHsm();
 * const token = await hsm.initToken("test");
 * await hsm.generateKey(token, { type: "EC:prime256v1", label: "sigkey", id: "01" });
 * const uri = hsm.uri(token, { object: "sigkey" }); // pkcs11:token=test;object=sigkey?module-path=…&pin-value=…
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { run } from "./exec.ts";
import { concatBytes, removeDir } from "./util.ts";

/** Where Debian installs the SoftHSM2 module. */
export const SOFTHSM2_MODULE = "/usr/lib/softhsm/libsofthsm2.so";

/** Key types `pkcs11-tool --key-type` understands and the tests use. */
export type SoftHsmKeyType = "EC:prime256v1" | "EC:secp384r1" | "rsa:1024" | "rsa:2048";

/** An initialised token. */
export interface SoftHsmToken {
  /** The token label. */
  readonly label: string;
  /** The user PIN. */
  readonly pin: string;
  /** The security officer PIN. */
  readonly soPin: string;
}

/** A key on a token. */
export interface SoftHsmKeySpec {
  /** Key type for `pkcs11-tool --key-type`. */
  type: SoftHsmKeyType;
  /** `CKA_LABEL`. */
  label: string;
  /** `CKA_ID` as hex, e.g. `"01"`. */
  id: string;
}

/** A SoftHSM2 instance in a temporary directory. */
export interface SoftHsm extends AsyncDisposable {
  /** The temporary directory (configuration and tokens). */
  readonly dir: string;
  /** The `softhsm2.conf` path. */
  readonly conf: string;
  /** The module path. */
  readonly modulePath: string;
  /** Environment for child processes: `SOFTHSM2_CONF`. */
  readonly env: Record<string, string>;
  /** Initialises a new token in the first free slot. */
  initToken(label: string, pins?: { pin?: string; soPin?: string }): Promise<SoftHsmToken>;
  /** The slot id (decimal) of the token with `label` (slot ids are random at every init). */
  slotOf(label: string): Promise<string>;
  /** Generates a key pair on the token with `pkcs11-tool --keypairgen`. */
  generateKey(token: SoftHsmToken, spec: SoftHsmKeySpec): Promise<void>;
  /** The public key of `id` as `pkcs11-tool --read-object --type pubkey` exports it, as PEM (via openssl). */
  publicKeyPem(token: SoftHsmToken, id: string): Promise<string>;
  /**
   * A `pkcs11:` URI for a key on the token: `token=…;object=…` and/or `id=…` (hex, percent-encoded), with
   * `module-path` and, unless `pin` is `false`, `pin-value`.
   */
  uri(token: SoftHsmToken, key: { object?: string; id?: string; pin?: boolean }): string;
  /** Removes the directory and restores this process's `SOFTHSM2_CONF`. */
  close(): Promise<void>;
}

/**
 * Creates a SoftHSM2 directory and configuration, and points this process's `SOFTHSM2_CONF` at it.
 *
 * @example
 * ```ts
 * await using hsm = await startSoftHsm();
 * ```
 */
export async function startSoftHsm(): Promise<SoftHsm> {
  const dir = await Deno.makeTempDir({ prefix: "airlock-softhsm-" });
  const tokens = join(dir, "tokens");
  await Deno.mkdir(tokens);
  const conf = join(dir, "softhsm2.conf");
  await Deno.writeTextFile(
    conf,
    `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
  );
  const previous = Deno.env.get("SOFTHSM2_CONF");
  Deno.env.set("SOFTHSM2_CONF", conf);
  const env = { SOFTHSM2_CONF: conf };
  const tool = (args: string[]) => runWith(env, "pkcs11-tool", ["--module", SOFTHSM2_MODULE, ...args]);
  let closed = false;

  const hsm: SoftHsm = {
    dir,
    conf,
    modulePath: SOFTHSM2_MODULE,
    env,
    async initToken(label, pins = {}) {
      const pin = pins.pin ?? "1234";
      const soPin = pins.soPin ?? "5678";
      await runWith(env, "softhsm2-util", [
        "--init-token",
        "--free",
        "--label",
        label,
        "--pin",
        pin,
        "--so-pin",
        soPin,
      ]);
      return { label, pin, soPin };
    },
    async slotOf(label) {
      const { stdout } = await runWith(env, "softhsm2-util", ["--show-slots"]);
      for (const block of stdout.split(/^Slot /m).slice(1)) {
        const slot = block.match(/^(\d+)/)?.[1];
        const l = block.match(/^\s*Label:\s*(.*?)\s*$/m)?.[1];
        if (slot && l === label) return slot;
      }
      throw new Error(`no SoftHSM2 token labelled "${label}"`);
    },
    async generateKey(token, spec) {
      await tool([
        "--token-label",
        token.label,
        "--login",
        "--pin",
        token.pin,
        "--keypairgen",
        "--key-type",
        spec.type,
        "--label",
        spec.label,
        "--id",
        spec.id,
      ]);
    },
    async publicKeyPem(token, id) {
      const der = join(dir, `pub-${crypto.randomUUID()}.der`);
      const select = ["--token-label", token.label, "--type", "pubkey", "--id", id];
      try {
        try {
          await tool([...select, "--read-object", "-o", der]);
        } catch (e) {
          // OpenSC 0.23's --read-object fails on P-384 keys ("cannot create EVP_PKEY"): build the SPKI from
          // the EC_PARAMS and EC_POINT that `pkcs11-tool --list-objects` prints instead.
          const { stdout } = await tool([...select, "--list-objects"]);
          // --list-objects ignores --id: pick the object whose ID line matches
          const block = stdout.split(/^(?=Public Key Object)/m).find((b) =>
            new RegExp(`^\\s*ID:\\s*${id}\\s*$`, "mi").test(b)
          ) ?? "";
          const point = block.match(/EC_POINT:\s*([0-9a-f]+)/)?.[1];
          const params = block.match(/EC_PARAMS:\s*([0-9a-f]+)/)?.[1];
          if (!point || !params) {
            throw e;
          }
          await Deno.writeFile(der, ecSpkiFromHex(params, point));
        }
        return (await run("openssl", ["pkey", "-pubin", "-inform", "DER", "-in", der])).stdout;
      } finally {
        await Deno.remove(der).catch(() => {});
      }
    },
    uri(token, key) {
      const path = [`token=${encodeURIComponent(token.label)}`];
      if (key.object !== undefined) path.push(`object=${encodeURIComponent(key.object)}`);
      if (key.id !== undefined) path.push(`id=${key.id.replace(/(..)/g, "%$1")}`);
      let uri = `pkcs11:${path.join(";")}?module-path=${SOFTHSM2_MODULE}`;
      if (key.pin !== false) uri += `&pin-value=${encodeURIComponent(token.pin)}`;
      return uri;
    },
    async close() {
      if (closed) return;
      closed = true;
      if (previous === undefined) Deno.env.delete("SOFTHSM2_CONF");
      else Deno.env.set("SOFTHSM2_CONF", previous);
      await removeDir(dir);
    },
    [Symbol.asyncDispose]() {
      return hsm.close();
    },
  };
  return hsm;
}

async function runWith(env: Record<string, string>, cmd: string, args: string[]) {
  const out = await new Deno.Command(cmd, { args, env, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  const result = { stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  if (!out.success) {
    throw new Error(
      `${cmd} ${args[0]} … exited with ${out.code}: ${(result.stderr || result.stdout).trim()}`,
    );
  }
  return result;
}

/** SPKI DER from hex `CKA_EC_PARAMS` (an OID) and `CKA_EC_POINT` (an OCTET STRING around the point). */
function ecSpkiFromHex(paramsHex: string, pointHex: string): Uint8Array {
  const bytes = (h: string) => Uint8Array.from(h.match(/../g)!, (x) => parseInt(x, 16));
  const tlv = (tag: number, ...parts: Uint8Array[]) => {
    const body = concatBytes(...parts);
    const n = body.length;
    const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
    return new Uint8Array([tag, ...len, ...body]);
  };
  const wrapped = bytes(pointHex);
  const point = wrapped[1] & 0x80 ? wrapped.subarray(2 + (wrapped[1] & 0x7f)) : wrapped.subarray(2);
  return tlv(
    0x30,
    tlv(0x30, bytes("06072a8648ce3d0201"), bytes(paramsHex)),
    tlv(0x03, new Uint8Array([0]), point),
  );
}

/** A key on a fresh token whose PIN is read from a file, as `--key pkcs11:…?pin-source=FILE` names it. */
export interface SoftHsmPinFileKey {
  /** The token. */
  readonly token: SoftHsmToken;
  /** The PIN file (mode 0600, no trailing newline). */
  readonly pinFile: string;
  /** `pkcs11:token=…;object=…?module-path=…&pin-source=…`. */
  readonly ref: string;
}

/**
 * Initialises token `token` with user PIN `pin`, generates an ECDSA P-256 key `label`/`id` on it and writes the
 * PIN to `<dir>/pin`; returns the key reference with `pin-source`.
 *
 * @example
 * ```ts
 * const { ref } = await softHsmPinFileKey(hsm, tmp.path, { token: "e2e", label: "signer", id: "07", pin: "1234" });
 * ```
 */
export async function softHsmPinFileKey(
  hsm: SoftHsm,
  dir: string,
  o: { token: string; label: string; id: string; pin: string },
): Promise<SoftHsmPinFileKey> {
  const token = await hsm.initToken(o.token, { pin: o.pin });
  await hsm.generateKey(token, { type: "EC:prime256v1", label: o.label, id: o.id });
  const pinFile = join(dir, "pin");
  await Deno.writeTextFile(pinFile, o.pin, { mode: 0o600 });
  const ref = `pkcs11:token=${o.token};object=${o.label}?module-path=${hsm.modulePath}&pin-source=${pinFile}`;
  return { token, pinFile, ref };
}
