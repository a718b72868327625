/**
 * Free TCP ports on the loopback interface, chosen at run time.
 *
 * @module
 */

/**
 * Returns a TCP port on 127.0.0.1 that was free a moment ago: listens on port 0, reads the port the kernel
 * chose, closes the listener. Another process may take the port before the caller binds it; starters that use
 * it (see `startRegistry`) retry on "address already in use".
 *
 * @example
 * ```ts
 * const port = freePort();
 * ```
 */
export function freePort(hostname = "127.0.0.1"): number {
  const listener = Deno.listen({ hostname, port: 0, transport: "tcp" });
  try {
    return (listener.addr as Deno.NetAddr).port;
  } finally {
    listener.close();
  }
}
