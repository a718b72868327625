/**
 * Test certificates made with the `openssl` CLI: a small EC P-256 CA and leaf certificates signed by it.
 *
 * Deno's `fetch` rejects a leaf marked `CA:TRUE` (`CaUsedAsEndEntity`), which is what a plain
 * `openssl req -x509` makes with OpenSSL 3; so servers get a CA-signed leaf with `basicConstraints=CA:FALSE`.
 * Each call writes its own minimal openssl config, so the system's `openssl.cnf` defaults never apply.
 *
 * @module
 */
import { join } from "node:path";
import { run } from "./exec.ts";

/** A certificate and its private key, as files and as PEM text. */
export interface CertKeyPair {
  /** Path of the certificate (PEM). */
  certPath: string;
  /** Path of the private key (PEM, unencrypted PKCS#8 `PRIVATE KEY`). */
  keyPath: string;
  /** The certificate, PEM. */
  certPem: string;
  /** The private key, PEM (PKCS#8). */
  keyPem: string;
}

/** A self-signed CA certificate (`CA:TRUE`) and its key. */
export interface CertAuthority extends CertKeyPair {
  /** The CA's subject common name. */
  commonName: string;
}

/** Options of {@linkcode makeCa}. */
export interface MakeCaOptions {
  /** File name prefix inside `dir` (default `ca`): writes `<name>.crt` and `<name>.key`. */
  name?: string;
  /** Subject common name (default `airlock test CA (<name>)`). */
  commonName?: string;
  /** Validity in days (default 7). */
  days?: number;
}

/** Options of {@linkcode makeLeaf}. */
export interface MakeLeafOptions {
  /** subjectAltName entries in openssl syntax (default `["IP:127.0.0.1", "DNS:localhost"]`). */
  sans?: string[];
  /** File name prefix inside `dir` (default `leaf`): writes `<name>.crt` and `<name>.key`. */
  name?: string;
  /** Subject common name (default `localhost`). */
  commonName?: string;
  /** Validity in days (default 7). */
  days?: number;
  /** extendedKeyUsage (default `serverAuth`; `clientAuth` for client certificates). */
  usage?: "serverAuth" | "clientAuth";
}

/** Writes `<dir>/<name>.cnf`, an openssl `req` config: subject `CN = commonName`, x509 extensions `ext`. */
async function writeReqConfig(dir: string, name: string, commonName: string, ext: string[]): Promise<string> {
  const cnf = join(dir, `${name}.cnf`);
  await Deno.writeTextFile(
    cnf,
    [
      "[req]",
      "distinguished_name = dn",
      "prompt = no",
      "x509_extensions = ext",
      "[dn]",
      `CN = ${commonName}`,
      "[ext]",
      ...ext,
      "",
    ].join("\n"),
  );
  return cnf;
}

/**
 * Makes an EC P-256 CA certificate (self-signed, `CA:TRUE`, keyCertSign) in `dir`.
 *
 * @example
 * ```ts
 * const ca = await makeCa(dir);
 * const client = Deno.createHttpClient({ caCerts: [ca.certPem] });
 * ```
 */
export async function makeCa(dir: string, opts: MakeCaOptions = {}): Promise<CertAuthority> {
  const name = opts.name ?? "ca";
  const commonName = opts.commonName ?? `airlock test CA (${name})`;
  const cnf = await writeReqConfig(dir, name, commonName, [
    "basicConstraints = critical,CA:TRUE",
    "keyUsage = critical,keyCertSign,cRLSign,digitalSignature",
    "subjectKeyIdentifier = hash",
  ]);
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  // deno-fmt-ignore
  await run("openssl", [
    "req", "-x509", "-config", cnf, "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", keyPath, "-out", certPath, "-days", String(opts.days ?? 7),
  ]);
  return {
    commonName,
    certPath,
    keyPath,
    certPem: await Deno.readTextFile(certPath),
    keyPem: await Deno.readTextFile(keyPath),
  };
}

/**
 * Makes an EC P-256 leaf certificate signed by `ca` (`CA:FALSE`, serverAuth, SAN `IP:127.0.0.1,DNS:localhost`
 * unless `sans` says otherwise) in `dir`.
 *
 * @example
 * ```ts
 * const ca = await makeCa(dir);
 * const leaf = await makeLeaf(dir, ca, { sans: ["IP:127.0.0.1", "DNS:localhost"] });
 * ```
 */
export async function makeLeaf(
  dir: string,
  ca: CertKeyPair,
  opts: MakeLeafOptions = {},
): Promise<CertKeyPair> {
  const name = opts.name ?? "leaf";
  const sans = opts.sans ?? ["IP:127.0.0.1", "DNS:localhost"];
  const cnf = await writeReqConfig(dir, name, opts.commonName ?? "localhost", [
    "basicConstraints = critical,CA:FALSE",
    ...(sans.length > 0 ? [`subjectAltName = ${sans.join(",")}`] : []),
    "keyUsage = critical,digitalSignature",
    `extendedKeyUsage = ${opts.usage ?? "serverAuth"}`,
    "subjectKeyIdentifier = hash",
    "authorityKeyIdentifier = keyid",
  ]);
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  // deno-fmt-ignore
  await run("openssl", [
    "req", "-x509", "-config", cnf, "-CA", ca.certPath, "-CAkey", ca.keyPath,
    "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", keyPath, "-out", certPath, "-days", String(opts.days ?? 7),
  ]);
  return {
    certPath,
    keyPath,
    certPem: await Deno.readTextFile(certPath),
    keyPem: await Deno.readTextFile(keyPath),
  };
}

/**
 * Makes a second, unrelated CA for negative tests: a client that trusts only this one must reject servers whose
 * leaf was signed by the CA of {@linkcode makeCa}.
 *
 * @example
 * ```ts
 * const other = await makeUntrustedCa(dir);
 * const client = Deno.createHttpClient({ caCerts: [other.certPem] }); // fails the handshake
 * ```
 */
export function makeUntrustedCa(dir: string): Promise<CertAuthority> {
  return makeCa(dir, { name: "untrusted-ca", commonName: "airlock untrusted test CA" });
}
