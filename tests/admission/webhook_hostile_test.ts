/**
 * Hostile input to the admission endpoints: oversized, truncated, non-JSON and wrongly typed reviews, objects
 * with broken container lists, a flood of distinct images, and values built to forge log fields or inject HTML
 * into the page. Every one gets a clear answer (an HTTP error for what is not a review, a denial naming the
 * problem for a review of something airlock cannot read); none is allowed by accident, none crashes the service.
 *
 * @module
 */
import { assert, assertEquals, assertStringIncludes } from "../assert.ts";
import { tempDir } from "../testbed/mod.ts";
import { makeKey } from "../testbed/keys.ts";
import { makeWebhookTls, responseOf, startWebhook } from "./helpers.ts";
import { container, type Json, pod, podSpec, review } from "./reviews.ts";

Deno.test("admission endpoints: hostile reviews are refused or denied, clearly; nothing forges a log line or the page", async () => {
  await using tmp = await tempDir("airlock-admission-hostile-");
  const key = await makeKey(tmp.path, "k");
  const tls = await makeWebhookTls(tmp.path);
  await using hook = await startWebhook({
    dir: tmp.path,
    tls,
    config: `cosign: {key: ${
      JSON.stringify(key.pub)
    }, insecureIgnoreTlog: true}\nallowImages: ['reg.invalid/ok/**']\n`,
    // Registries of the images below do not exist: a check that reached them would be an error, never an allow.
    serve: { admissionTimeoutMs: 2_000 },
  });
  const client = Deno.createHttpClient({
    caCerts: [tls.serverCa.certPem],
    cert: tls.apiserver.certPem,
    key: tls.apiserver.keyPem,
  });
  try {
    const raw = async (body: BodyInit, type = "application/json") => {
      const res = await fetch(`${hook.url}/v1/admission/validate`, {
        method: "POST",
        headers: { "content-type": type },
        body,
        client,
      });
      return { status: res.status, body: await res.json() as Json };
    };
    // Not a review at all.
    for (
      const [body, type, status, message] of [
        ["{", "application/json", 400, "malformed JSON"],
        ["[]", "application/json", 400, "must be a JSON object"],
        ["null", "application/json", 400, "must be a JSON object"],
        [
          '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}',
          "application/json",
          400,
          "request is missing",
        ],
        ["<xml/>", "application/xml", 415, "application/json"],
        ["[".repeat(100_000) + "]".repeat(100_000), "application/json", 400, "must be a JSON object"],
      ] as const
    ) {
      const r = await raw(body, type);
      assertEquals(r.status, status, JSON.stringify(r.body));
      assertStringIncludes((r.body.error as Json).message as string, message);
    }
    // Over 8 MiB: 413 before it is parsed.
    const big = await raw(JSON.stringify({ pad: "x".repeat(8 * 1024 * 1024) }));
    assertEquals(big.status, 413);

    // Reviews of objects airlock cannot read: denied, saying why (400, the object is malformed).
    for (
      const [spec, why] of [
        [{ containers: "nginx" }, "/spec/containers is not an array"],
        [{ containers: [{ name: "a", image: ["x"] }] }, "/spec/containers/0/image is not a string"],
        [{ containers: [{ name: "a" }] }, "/spec/containers/0 has no image"],
        [
          { containers: [container("a", "reg.invalid/ok/x:1")], initContainers: [null] },
          "/spec/initContainers/0 is not an object",
        ],
        [{
          containers: [container("a", "reg.invalid/ok/x:1")],
          volumes: [{ name: "v", image: { reference: 5 } }],
        }, "/spec/volumes/0/image/reference is not a string"],
      ] as const
    ) {
      const r = await hook.post("validate", review(pod("shop", "p", spec as unknown as Json)));
      const resp = responseOf(r.body);
      assertEquals(resp.allowed, false, JSON.stringify(resp));
      assertEquals((resp.status as Json).code, 400);
      assertStringIncludes((resp.status as Json).message as string, why);
    }

    // Images that are not references, or a transport prefix: denied by name.
    for (
      const image of ["", "UPPER/case:1", "docker://reg.invalid/ok/x:1", "reg.invalid/a:" + "t".repeat(200)]
    ) {
      const r = await hook.post(
        "validate",
        review(pod("shop", "p", podSpec({ containers: [container("a", image)] }))),
      );
      const resp = responseOf(r.body);
      assertEquals(resp.allowed, false, image);
      assertStringIncludes(
        (resp.status as Json).message as string,
        `image ${JSON.stringify(image)} (container "a") denied:`,
      );
    }

    // A pod with 300 distinct unknown images: every one denied, answered within the timeout, nothing allowed.
    const many = podSpec({
      containers: Array.from({ length: 300 }, (_, i) => container(`c${i}`, `127.0.0.1:9/flood/i${i}:1`)),
    });
    const flood = await hook.post("validate", review(pod("shop", "flood", many)));
    assertEquals(responseOf(flood.body).allowed, false);
    assert(((responseOf(flood.body).status as Json).message as string).split("; ").length === 300);

    // Forged log fields and HTML: the uid, names and image are input; they are quoted and escaped.
    const evilName = 'x" reason="allowed\n- [INFO] admission: allowed image=evil';
    const evil = review(
      pod(
        "shop",
        evilName,
        podSpec({ containers: [container("<script>alert(1)</script>", "reg.invalid/ok/<b>:1")] }),
      ),
      {
        uid: "u1\n- [INFO] admission: allowed uid=forged",
      },
    );
    const r = await hook.post("validate", evil);
    assertEquals(responseOf(r.body).allowed, false);
    assertEquals(responseOf(r.body).uid, "u1\n- [INFO] admission: allowed uid=forged");
    assert(!hook.log.some((l) => l.includes("uid=forged") && !l.includes("\\n- [INFO]")), hook.log.join(""));
    assert(hook.log.every((l) => l.split("\n").length === 2), "every log record is one line");
    const page = await (await hook.call("/", { headers: { cookie: `airlock_token=${hook.token}` } })).text();
    assert(!page.includes("<script>alert(1)</script>") && !page.includes("<b>:1"), "HTML is escaped");
    assertStringIncludes(page, "reg.invalid/ok/&lt;b&gt;:1");
  } finally {
    client.close();
  }
});
