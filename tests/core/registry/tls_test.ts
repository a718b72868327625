/**
 * TLS against real registries: untrusted certificates fail clearly; certs.d roots, a `--cert-dir` directory and
 * `tlsVerify: false` (node:https without verification, plain http fallback) each make it work; unreachable hosts
 * are named.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "../../assert.ts";
import {
  buildImage,
  freePort,
  makeCa,
  makeLeaf,
  makeUntrustedCa,
  pushImage,
  startRegistry,
} from "../../testbed/mod.ts";
import { isAirlockError } from "../../../core/errors.ts";
import { RegistryClient } from "../../../core/registry/client.ts";
import { loadTlsMaterial } from "../../../core/registry/tls.ts";
import { rate } from "./helpers.ts";

Deno.test("TLS: untrusted certificate is a clear TLS_ERROR; certDirs, certDir and tlsVerify:false all work", async () => {
  await using reg = await startRegistry({ tls: true });
  const repo = { registry: reg.host, repository: "tls/app" };
  const img = await buildImage({ seed: "tls" });

  const strict = new RegistryClient({ certDirs: [] });
  try {
    const e = await assertRejects(() => strict.getManifest({ ...repo, tag: "v1" }));
    assert(isAirlockError(e, "TLS_ERROR"), String(e));
    assertStringIncludes(e.message, reg.host);
    assertStringIncludes(e.message, "unknown authority");
    assertStringIncludes(e.message, "--cert-dir");
    assertStringIncludes(e.message, "--tls-verify=false");
  } finally {
    strict.close();
  }

  // Trusting another CA does not help.
  const dir = await Deno.makeTempDir();
  try {
    const other = await makeUntrustedCa(dir);
    await Deno.mkdir(join(dir, "wrong", reg.host), { recursive: true });
    await Deno.writeTextFile(join(dir, "wrong", reg.host, "ca.crt"), other.certPem);
    const wrong = new RegistryClient({ certDirs: [join(dir, "wrong")] });
    try {
      const e = await assertRejects(() => wrong.ping(reg.host));
      assert(isAirlockError(e, "TLS_ERROR"), String(e));
    } finally {
      wrong.close();
    }

    // certs.d root: <root>/<host:port>/ca.crt (the first existing root wins).
    const viaCertsD = new RegistryClient({
      certDirs: [join(dir, "missing"), reg.certDir!, join(dir, "wrong")],
    });
    try {
      await pushImage(img, repo, "v1", viaCertsD);
      assertEquals((await viaCertsD.getManifest({ ...repo, tag: "v1" })).bytes, img.top.bytes);
    } finally {
      viaCertsD.close();
    }

    // --cert-dir: one flat directory, replacing the certs.d lookup (certDirs ignored).
    await Deno.mkdir(join(dir, "flat"));
    await Deno.writeTextFile(join(dir, "flat", "registry-ca.crt"), reg.caCertPem!);
    const viaCertDir = new RegistryClient({ certDir: join(dir, "flat"), certDirs: [join(dir, "wrong")] });
    try {
      assertEquals((await viaCertDir.getManifest({ ...repo, tag: "v1" })).bytes, img.top.bytes);
    } finally {
      viaCertDir.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }

  // tlsVerify:false really skips the checks (node:https, rejectUnauthorized false), same API, same results.
  const insecure = new RegistryClient({ tlsVerify: false, certDirs: [] });
  const verified = new RegistryClient({ certDirs: [reg.certDir!] });
  try {
    for (const [d, b] of img.blobs) assertEquals(await insecure.getBlob(repo, d), b);
    await insecure.uploadBlob(repo, new TextEncoder().encode("insecure upload"));
    const ref = { ...repo, tag: "v1" };
    const fast = await rate(200, () => verified.getManifest(ref));
    const slow = await rate(200, () => insecure.getManifest(ref));
    console.log(
      `  manifest GET over TLS: fetch (verified) ${fast} req/s, node:https (tlsVerify:false) ${slow} req/s`,
    );
  } finally {
    insecure.close();
    verified.close();
  }
});

Deno.test("plain http registry: refused with tlsVerify (no localhost exception); tlsVerify:false falls back to http", async () => {
  await using reg = await startRegistry();
  const repo = { registry: reg.host, repository: "http/app" };
  const strict = new RegistryClient({ certDirs: [] });
  try {
    const e = await assertRejects(() => strict.ping(reg.host));
    assert(isAirlockError(e, "TLS_ERROR"), String(e));
    assertStringIncludes(e.message, "--tls-verify=false");
  } finally {
    strict.close();
  }
  const insecure = new RegistryClient({ tlsVerify: false });
  try {
    const img = await buildImage({ seed: "http" });
    await pushImage(img, repo, "v1", insecure);
    assertEquals((await insecure.getManifest({ ...repo, tag: "v1" })).bytes, img.top.bytes);
    await insecure.ping(reg.host);
  } finally {
    insecure.close();
  }
});

Deno.test("unreachable: connection refused and unknown host name REGISTRY_UNREACHABLE naming the host", async () => {
  const host = `127.0.0.1:${freePort()}`;
  for (const tlsVerify of [true, false]) {
    const client = new RegistryClient({ tlsVerify, retries: 0 });
    try {
      const e = await assertRejects(() => client.getManifest({ registry: host, repository: "a", tag: "v1" }));
      assert(isAirlockError(e, "REGISTRY_UNREACHABLE"), String(e));
      assertStringIncludes(e.message, `cannot reach registry ${host}: connection refused`);
      const d = await assertRejects(() => client.ping("no-such-host.invalid"));
      assert(isAirlockError(d, "REGISTRY_UNREACHABLE"), String(d));
      assertStringIncludes(d.message, "no-such-host.invalid");
    } finally {
      client.close();
    }
  }
});

Deno.test("certs.d lookup: first existing host directory, client certificate pairs, --cert-dir replaces", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ca = await makeCa(dir);
    const leaf = await makeLeaf(dir, ca);
    const host = "reg.example:5000";
    for (const root of ["a", "b"]) await Deno.mkdir(join(dir, root, host), { recursive: true });
    await Deno.writeTextFile(join(dir, "a", host, "ca.crt"), ca.certPem);
    await Deno.writeTextFile(join(dir, "a", host, "extra.crt"), ca.certPem);
    await Deno.writeTextFile(join(dir, "a", host, "client.cert"), leaf.certPem);
    await Deno.writeTextFile(join(dir, "a", host, "client.key"), leaf.keyPem);
    await Deno.writeTextFile(join(dir, "b", host, "ignored.crt"), "not read");
    const m = await loadTlsMaterial(host, { certDirs: [join(dir, "none"), join(dir, "a"), join(dir, "b")] });
    assertEquals(m.dir, join(dir, "a", host));
    assertEquals(m.caCerts.length, 2);
    assertEquals(m.clientCert, { cert: leaf.certPem, key: leaf.keyPem });
    assertEquals(await loadTlsMaterial("other:1", { certDirs: [join(dir, "a")] }), { caCerts: [] });
    const flat = await loadTlsMaterial(host, { certDir: join(dir, "b", host), certDirs: [join(dir, "a")] });
    assertEquals(flat.caCerts, ["not read"]);
    await Deno.writeTextFile(join(dir, "b", host, "lonely.cert"), leaf.certPem);
    const e = await assertRejects(() => loadTlsMaterial(host, { certDirs: [join(dir, "b")] }));
    assert(isAirlockError(e, "TLS_ERROR"));
    assertStringIncludes(e.message, "missing key lonely.key");

    // A registry client presents the client certificate (the test registry does not ask for one; the point is
    // that the material loads into Deno's HTTP client and TLS still works).
    await using reg = await startRegistry({ tls: true });
    await Deno.mkdir(join(dir, "c", reg.host), { recursive: true });
    await Deno.writeTextFile(join(dir, "c", reg.host, "ca.crt"), reg.caCertPem!);
    await Deno.writeTextFile(join(dir, "c", reg.host, "client.cert"), leaf.certPem);
    await Deno.writeTextFile(join(dir, "c", reg.host, "client.key"), leaf.keyPem);
    const client = new RegistryClient({ certDirs: [join(dir, "c")] });
    try {
      await client.ping(reg.host);
    } finally {
      client.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
