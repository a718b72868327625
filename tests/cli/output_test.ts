/**
 * What the list commands tell their operator, through the real CLI against a real registry: one result line per
 * image and a summary line whose counts are checked against what the registry holds (a 50-image `sign`), each
 * error once, no passphrase line before the error that the passphrase file cannot be read, control characters
 * of an image list escaped, `--output json` on `mirror`, `save` and `load`, and the progress line: on a terminal
 * (a pseudo-terminal made by `script`) it never shares a line with a log record; in a pipe it is never written.
 *
 * @module
 */
import { join } from "node:path";
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../assert.ts";
import {
  airlock,
  ATTACHMENTS_ON,
  buildImage,
  CLI,
  CONFIG,
  denoDir,
  pushMulti,
  pushSingle,
  pushTo,
  show,
  startRegistry,
  tempDir,
  writeList,
  writeRegistriesD,
} from "../testbed/mod.ts";
import { makeKey } from "../testbed/keys.ts";
import { listTags, OCI_MANIFEST } from "../testbed/signatures.ts";
import { ProgressLine, shortDuration } from "../../cli/progress.ts";

const dec = new TextDecoder();

/** A terminal double: collects what is written; a clock the test moves. */
function fakeTerminal() {
  const written: string[] = [];
  let now = 0;
  return {
    out: {
      writeSync: (p: Uint8Array) => {
        written.push(dec.decode(p));
        return p.length;
      },
      isTerminal: () => true,
    },
    written,
    clock: { now: () => now, advance: (ms: number) => (now += ms) },
  };
}

Deno.test("progress line: nothing for the first moment; done/total, rate, ETA; records go around it", () => {
  const t = fakeTerminal();
  const p = new ProgressLine(t.out, {
    label: "signing",
    afterMs: 1000,
    now: t.clock.now,
    columns: () => 120,
  });
  p.update(1, 10);
  assertEquals(t.written, [], "drawn before the run lasted a moment");
  t.clock.advance(2000);
  p.update(4, 10); // 4 images in 2 s: 2/s, 6 left: 3 s
  assertEquals(t.written, ["\r\x1b[Ksigning 4/10 (40%)  2.0/s  ETA 3s"]);
  t.clock.advance(10);
  p.update(5, 10);
  assertEquals(t.written.length, 1, "redrawn faster than every 100 ms");
  t.written.length = 0;
  p.around(() => t.written.push("[RECORD]\n"));
  assertEquals(t.written, ["\r\x1b[K", "[RECORD]\n", "\r\x1b[Ksigning 5/10 (50%)  2.5/s  ETA 2s"]);
  t.written.length = 0;
  p.end();
  assertEquals(t.written, ["\r\x1b[K"]);
  t.written.length = 0;
  p.around(() => t.written.push("[AFTER]\n"));
  assertEquals(t.written, ["[AFTER]\n"], "the line came back after the run ended");
  const narrow = new ProgressLine(t.out, {
    label: "validating",
    afterMs: 0,
    now: t.clock.now,
    columns: () => 30,
  });
  assertEquals(narrow.text().length, 29, "a line wider than the terminal would wrap and never be erased");
  assertEquals([shortDuration(45_000), shortDuration(185_000), shortDuration(3_720_000)], [
    "45s",
    "3m05s",
    "1h02m",
  ]);
});

/** A terminal, as a terminal shows what was written: `\r` goes to column 0, `ESC[K` erases to the line's end. */
function screen(raw: string): string[] {
  const lines: string[] = [];
  let line = "";
  let col = 0;
  for (let i = 0; i < raw.length; i++) {
    if (raw.startsWith("\x1b[K", i)) {
      line = line.slice(0, col);
      i += 2;
    } else if (raw[i] === "\r") col = 0;
    else if (raw[i] === "\n") {
      lines.push(line);
      line = "";
      col = 0;
    } else {
      line = line.slice(0, col) + raw[i] + line.slice(col + 1);
      col++;
    }
  }
  if (line !== "") lines.push(line);
  return lines;
}

/** Every `.sig` tag of `repos`: `repo:tag` → the number of layers of its manifest. */
async function sigLayers(
  reg: { fetch(path: string, init?: RequestInit): Promise<Response> },
  repos: string[],
) {
  const out = new Map<string, number>();
  for (const repo of repos) {
    for (const tag of (await listTags(reg, repo)).filter((t) => t.endsWith(".sig"))) {
      const res = await reg.fetch(`/v2/${repo}/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
      out.set(`${repo}:${tag}`, ((await res.json()) as { layers: unknown[] }).layers.length);
    }
  }
  return out;
}

Deno.test("list commands: result lines, a summary checked against the registry, errors once, JSON, progress", async (t) => {
  await using tmp = await tempDir("airlock-output-");
  await using reg = await startRegistry();
  const h = reg.host;
  const key = await makeKey(tmp.path, "out");
  const rd = await writeRegistriesD(tmp.path, ATTACHMENTS_ON);
  const common = ["--tls-verify=false", "--registries.d", rd, "--hide-log-time"];
  const signArgs = ["-k", key.key, "--sigstore-passphrase-file", key.pass, ...common];

  // 50 lines: 33 multi-arch images (index + 2 platforms each), 15 single-arch, one whose only platform the
  // default --arch leaves out (skipped), one that does not exist (failed). 3 of the multi-arch images are signed
  // beforehand (unchanged).
  const repos: string[] = [];
  const lines: string[] = [];
  for (let i = 0; i < 33; i++) {
    await pushMulti(reg, `out/multi${i}`, "v1", `out-multi-${i}`);
    repos.push(`out/multi${i}`);
    lines.push(`${h}/out/multi${i}:v1`);
  }
  for (let i = 0; i < 15; i++) {
    await pushSingle(reg, `out/single${i}`, "v1", `out-single-${i}`);
    repos.push(`out/single${i}`);
    lines.push(`${h}/out/single${i}:v1`);
  }
  await pushTo(reg, "out/s390x", "v1", await buildImage({ seed: "out-s390x", platform: "linux/s390x" }));
  repos.push("out/s390x");
  lines.push(`${h}/out/s390x:v1`, `${h}/out/missing:v1`);
  await writeList(join(tmp.path, "pre.txt"), lines.slice(0, 3));
  const pre = await airlock(["sign", "-f", "pre.txt", ...signArgs], { cwd: tmp.path });
  assertEquals(pre.code, 0, show(pre));
  await writeList(join(tmp.path, "images.txt"), lines);

  await t.step("a 50-image sign ends with a summary whose counts are the registry's", async () => {
    const before = await sigLayers(reg, repos);
    const r = await airlock(["sign", "-f", "images.txt", "-j", "8", ...signArgs], { cwd: tmp.path });
    assertEquals(r.code, 1, show(r)); // the missing image fails the run
    const after = await sigLayers(reg, repos);
    // What the registry says happened.
    let written = 0;
    let present = 0;
    const signedRepos = new Set<string>();
    for (const [tag, n] of after) {
      const was = before.get(tag) ?? 0;
      written += n - was;
      present += was;
      if (n > was) signedRepos.add(tag.slice(0, tag.indexOf(":")));
    }
    const unchangedRepos = new Set([...before.keys()].map((k) => k.slice(0, k.indexOf(":"))));
    for (const r of signedRepos) unchangedRepos.delete(r);
    assertEquals([signedRepos.size, unchangedRepos.size], [45, 3]);
    assertEquals([written, present], [30 * 3 + 15, 3 * 3]);
    const m =
      /^- \[INFO\] Sign summary: (\d+) signed, (\d+) unchanged, (\d+) skipped, (\d+) failed \(of 50 images\); (\d+) signatures written, (\d+) already present; \d+\.\ds$/m
        .exec(r.stdout);
    assert(m, show(r));
    assertEquals(m.slice(1).map(Number), [signedRepos.size, unchangedRepos.size, 1, 1, written, present]);
    // One result line per image, its counts the registry's for that image.
    const perRepo = new Map<string, number>();
    for (const [tag, n] of after) {
      const repo = tag.slice(0, tag.indexOf(":"));
      perRepo.set(repo, (perRepo.get(repo) ?? 0) + n - (before.get(tag) ?? 0));
    }
    const resultLines = [...r.stdout.matchAll(
      /^- \[INFO\] \[IMG:\d+\] (Signed|Unchanged) \[[^/]+\/(out\/[^:]+):v1\]: (\d+) signatures? (written|already present)/gm,
    )];
    assertEquals(resultLines.length, 48, r.stdout);
    for (const [, kind, repo, n, what] of resultLines) {
      if (kind === "Signed") {
        assertEquals([what, Number(n)], ["written", perRepo.get(repo)], repo);
      } else assertEquals([what, Number(n), perRepo.get(repo)], ["already present", 3, 0], repo);
    }
    // Each error once; the run's last words after the summary are hangar's.
    assertEquals(r.stderr.split("error occurred when sign").length - 1, 1, r.stderr);
    assertStringIncludes(r.stderr, `- [ERRO] [IMG:50] error occurred when sign [${h}/out/missing:v1]: `);
    assertStringIncludes(
      r.stderr,
      `- [WARN] [IMG:49] Skip sign image [${h}/out/s390x:v1]: no available image for specified arch and os\n`,
    );
    // deno-lint-ignore no-control-regex -- control characters are what this looks for
    assert(!/\r|\x1b/.test(r.stdout + r.stderr), "terminal control sequences written to a pipe");
  });

  await t.step(
    "validate: a multi-arch image without signatures is one error, not one per platform",
    async () => {
      await pushMulti(reg, "out/unsigned", "v1", "out-unsigned");
      await writeList(join(tmp.path, "unsigned.txt"), [`${h}/out/unsigned:v1`, `${h}/out/multi0:v1`]);
      const r = await airlock(["sign", "validate", "-f", "unsigned.txt", "-p", key.pub, ...common], {
        cwd: tmp.path,
      });
      assertEquals(r.code, 1, show(r));
      assertEquals(
        r.stderr.split("A signature was required, but no signature exists").length - 1,
        1,
        r.stderr,
      );
      assertStringIncludes(r.stdout, `- [INFO] [IMG:2] PASS: [${h}/out/multi0:v1]\n`);
      assertMatch(
        r.stdout,
        /^- \[INFO\] Validate summary: 1 validated, 0 skipped, 1 failed \(of 2 images\); \d+\.\ds$/m,
      );
    },
  );

  await t.step(
    "a passphrase file that cannot be read: its error, and no line saying it was read",
    async () => {
      const r = await airlock(
        [
          "sign",
          "-f",
          "pre.txt",
          "-k",
          key.key,
          "--sigstore-passphrase-file",
          join(tmp.path, "nope.pass"),
          ...common,
        ],
        { cwd: tmp.path },
      );
      assertEquals(r.code, 1, show(r));
      assert(!r.stdout.includes("Read the passphrase"), show(r));
      assertEquals(r.stderr.split("\n").filter((l) => l !== "").length, 1, r.stderr);
      assertStringIncludes(r.stderr, `- [FATA] failed to read "${join(tmp.path, "nope.pass")}": `);
    },
  );

  await t.step("control characters of an image list are escaped in log lines", async () => {
    await Deno.writeTextFile(
      join(tmp.path, "hostile.txt"),
      `${h}/out/multi0:v1\n${h}/out/evil\x1b]0;owned\x07\x1b[2J:v1\n${h}/out/r\rhidden:v1\n`,
    );
    const r = await airlock(["sign", "validate", "-f", "hostile.txt", "-p", key.pub, ...common], {
      cwd: tmp.path,
    });
    assertEquals(r.code, 1, show(r));
    // deno-lint-ignore no-control-regex -- control characters are what this looks for
    assert(!/[\x00-\x08\x0b-\x1f\x7f]/.test(r.stdout + r.stderr), `raw control characters:\n${show(r)}`);
    assertStringIncludes(r.stderr, `[${h}/out/evil\\x1b]0;owned\\x07\\x1b[2J:v1]`);
    assertStringIncludes(r.stderr, `[${h}/out/r\\x0dhidden:v1]`);
  });

  await t.step("--output json on mirror, save and load: one entry per line, counts", async () => {
    await writeList(join(tmp.path, "copy.txt"), [`${h}/out/multi0:v1`, `${h}/out/missing:v1`]);
    const statuses = (doc: { images: { status: string }[] }) => doc.images.map((i) => i.status);
    const mirror = await airlock(
      ["mirror", "-f", "copy.txt", "-d", h, "--destination-project", "copied", "--output", "json", ...common],
      { cwd: tmp.path },
    );
    assertEquals(mirror.code, 1, show(mirror));
    const m = JSON.parse(mirror.stdout);
    assertEquals(statuses(m), ["copied", "failed"]);
    assertEquals(m.summary, { copied: 1, skipped: 0, failed: 1, ignored: 0 });
    assertEquals(m.images[0].destination, `${h}/copied/multi0:v1`);
    assertEquals(m.images[0].signatureTags.length, 3); // index + 2 platforms, signed above
    assertEquals(m.images[1].error.code, "NOT_FOUND");
    assertStringIncludes(
      mirror.stderr,
      "[INFO] Mirror summary: 1 mirrored, 0 skipped, 1 failed (of 2 images)",
    );

    const save = await airlock(
      ["save", "-f", "copy.txt", "-d", "out.tar", "--output", "json", ...common],
      { cwd: tmp.path },
    );
    assertEquals(save.code, 1, show(save));
    const s = JSON.parse(save.stdout);
    assertEquals(statuses(s), ["copied", "failed"]);
    assertEquals(s.archive, "out.tar");
    assertEquals(s.summary, { copied: 1, skipped: 0, failed: 1, ignored: 0 });

    const load = await airlock(
      [
        "load",
        "-i",
        "out.tar",
        "-d",
        h,
        "--destination-project",
        "loaded",
        "--output",
        "json",
        "--tls-verify=false",
      ],
      { cwd: tmp.path },
    );
    assertEquals(load.code, 0, show(load));
    const l = JSON.parse(load.stdout);
    assertEquals(statuses(l), ["copied"]);
    assertEquals(l.images[0].destination, `${h}/loaded/multi0:v1`);
    assertEquals(l.summary, { copied: 1, skipped: 0, failed: 0, ignored: 0 });
    const tags = await listTags(reg, "loaded/multi0");
    assertEquals(tags.filter((t) => t.endsWith(".sig")).length, 3);
    // The signatures travelled with the image: cosign's check (key, digest, no identity) accepts it where it landed.
    const verified = await airlock(
      ["verify", "--key", key.pub, "--insecure-ignore-tlog", "--tls-verify=false", `${h}/loaded/multi0:v1`],
      { cwd: tmp.path },
    );
    assertEquals(verified.code, 0, show(verified));
  });

  await t.step("on a terminal: a progress line that no log record ever shares a line with", async () => {
    // `script` runs the command on a pseudo-terminal (stdout and stderr both), as an operator's shell would.
    const cmd = [
      Deno.execPath(),
      "run",
      "-A",
      "--config",
      CONFIG,
      CLI,
      "sign",
      "validate",
      "-f",
      "images.txt",
      "-p",
      key.pub,
      "-j",
      "4",
      ...common,
    ]
      .map((w) => `'${w.replaceAll("'", `'\\''`)}'`).join(" ");
    const out = await new Deno.Command("script", {
      args: ["-qfec", cmd, "/dev/null"],
      cwd: tmp.path,
      clearEnv: true,
      env: {
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        HOME: tmp.path,
        DENO_DIR: await denoDir(),
        NO_COLOR: "1",
        TERM: "xterm",
        AIRLOCK_PROGRESS_AFTER_MS: "0",
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const raw = dec.decode(out.stdout).replaceAll("\r\n", "\n");
    assertEquals(out.code, 1, raw.slice(-3000)); // the missing image; the s390x one (nothing validated)
    // deno-lint-ignore no-control-regex -- control characters are what this looks for
    assertMatch(raw, /\r\x1b\[Kvalidating \d+\/50 \(\d+%\)/, "no progress line was drawn");
    const shown = screen(raw);
    for (const line of shown) {
      // A record, or a line of the failed list a record spans.
      assert(
        /^- \[(INFO|WARN|ERRO|FATA)\] /.test(line) || lines.includes(line),
        `a screen line that is neither a log record nor a failed-list line:\n${JSON.stringify(line)}`,
      );
      assert(!line.includes("validating "), `the progress line shares a line with a record:\n${line}`);
    }
    assert(
      shown.some((l) => l.startsWith("- [INFO] Validate summary: 48 validated, 0 skipped, 2 failed")),
      shown.join("\n"),
    );
  });
});
