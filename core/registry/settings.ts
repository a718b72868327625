/**
 * The registry settings both front doors take (`--tls-verify`, `--cert-dir`, `--authfile` on the command line,
 * the operator's flags for `airlock serve`) and the client they make.
 *
 * @module
 */
import { RegistryClient } from "./client.ts";
import { createCredentialLookup } from "./credentials.ts";
import type { CredentialLookup } from "./types.ts";
import { VERSION } from "../version.ts";

/** How to reach registries: TLS and credentials. */
export interface RegistrySettings {
  /**
   * `false`: no certificate checks and plain http allowed (containers/image's `--tls-verify=false`). `undefined`
   * when not chosen: TLS is then verified (see DESIGN.md).
   */
  tlsVerify?: boolean;
  /** No certificate checks, plain http still refused (cosign's `--allow-insecure-registry`). */
  insecureSkipVerify?: boolean;
  /** Plain http allowed after https fails; certificates of https still checked (cosign's `--allow-http-registry`). */
  allowHttp?: boolean;
  /** A directory of `*.crt`, `*.cert`, `*.key` files used for every registry. */
  certDir?: string;
  /** The credentials file (default: containers auth.json, docker config.json). */
  authfile?: string;
}

/**
 * Builds the registry client for these settings: credentials from the usual files (or `credentials`), TLS
 * verified unless `tlsVerify` is `false` or `insecureSkipVerify` is set, plain http only with `tlsVerify: false`
 * or `allowHttp`, airlock's user agent.
 */
export function clientFor(settings: RegistrySettings, credentials?: CredentialLookup): RegistryClient {
  return new RegistryClient({
    tlsVerify: settings.tlsVerify !== false && settings.insecureSkipVerify !== true,
    allowHttp: settings.tlsVerify === false || settings.allowHttp === true,
    certDir: settings.certDir,
    credentials: credentials ?? createCredentialLookup({ authFile: settings.authfile }),
    userAgent: `airlock/${VERSION}`,
  });
}
