/**
 * The argument arrays of the list commands most tests and benchmarks run (`airlock sign` and `airlock sign
 * validate` with a list, a key, a registries.d and `--tls-verify=false`), built in one place. They only spell
 * the flags: what a test checks stays in the test.
 *
 * @module
 */

/** The flags every list command run here may take. */
export interface ListArgsOptions {
  /** The image list file (`-f`). */
  list: string;
  /** `--registries.d DIR`, when given. */
  registriesD?: string;
  /** `--tls-verify=false` when true. */
  insecure?: boolean;
  /** `--cert-dir DIR`, when given. */
  certDir?: string;
  /** `-j N`, when given. */
  jobs?: number;
  /** Arguments appended last, as they are. */
  extra?: string[];
}

/** Options of {@linkcode signArgs}. */
export interface SignArgsOptions extends ListArgsOptions {
  /** The private key file and its passphrase file (a `KeyFiles` from `keys.ts` fits). */
  key: { key: string; pass: string };
  /** How the key flag is spelled: `-k` (default) or `--key`. */
  keyFlag?: "-k" | "--key";
}

/** Options of {@linkcode validateArgs}. */
export interface ValidateArgsOptions extends ListArgsOptions {
  /** The public key file (`-p`), when given (a `--policy` in `extra` takes its place). */
  pub?: string;
}

function common(o: ListArgsOptions): { jobs: string[]; rest: string[] } {
  return {
    jobs: o.jobs === undefined ? [] : ["-j", String(o.jobs)],
    rest: [
      ...(o.certDir === undefined ? [] : ["--cert-dir", o.certDir]),
      ...(o.registriesD === undefined ? [] : ["--registries.d", o.registriesD]),
      ...(o.insecure ? ["--tls-verify=false"] : []),
      ...(o.extra ?? []),
    ],
  };
}

/**
 * `sign -f LIST [-j N] -k KEY --sigstore-passphrase-file PASS [--cert-dir D] [--registries.d RD]
 * [--tls-verify=false] EXTRA…`.
 *
 * @example
 * ```ts
 * const r = await airlock(signArgs({ list: "list.txt", key, registriesD: rd, insecure: true }), { cwd: tmp.path });
 * ```
 */
export function signArgs(o: SignArgsOptions): string[] {
  const { jobs, rest } = common(o);
  return [
    "sign",
    "-f",
    o.list,
    ...jobs,
    o.keyFlag ?? "-k",
    o.key.key,
    "--sigstore-passphrase-file",
    o.key.pass,
    ...rest,
  ];
}

/**
 * `sign validate -f LIST [-j N] [-p PUB] [--cert-dir D] [--registries.d RD] [--tls-verify=false] EXTRA…`.
 *
 * @example
 * ```ts
 * const r = await airlock(validateArgs({ list: "list.txt", pub: key.pub, registriesD: rd, insecure: true }), {
 *   cwd: tmp.path,
 * });
 * ```
 */
export function validateArgs(o: ValidateArgsOptions): string[] {
  const { jobs, rest } = common(o);
  return ["sign", "validate", "-f", o.list, ...jobs, ...(o.pub === undefined ? [] : ["-p", o.pub]), ...rest];
}
