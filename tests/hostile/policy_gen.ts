/**
 * Hostile `policy.json` files for the hostile-input suite: a valid containers policy mutated so that it is
 * invalid by construction — a member of the wrong type, an unknown member (containers/image refuses those), a
 * required member removed, an unknown requirement type, a requirement with two key sources or none, a truncated
 * or nested document — plus the untouched control. Only the control may load.
 *
 * @module
 */
import type { Rng } from "./rng.ts";

/** One policy case. */
export interface PolicyCase {
  /** The file's text. */
  readonly text: string;
  /** Whether it is the untouched valid policy. */
  readonly valid: boolean;
  /** What was done. */
  readonly what: string;
}

function base(): Record<string, unknown> {
  return {
    default: [{ type: "reject" }],
    transports: {
      docker: {
        "registry.example.io/app": [{
          type: "sigstoreSigned",
          keyPath: "/etc/pki/cosign.pub",
          signedIdentity: { type: "matchRepository" },
        }],
        "registry.example.io": [{ type: "insecureAcceptAnything" }],
      },
    },
  };
}

const WRONG = [1, -1, "x", true, {}, [1], [{}], { type: 1 }];

/** A mutation of the valid policy (invalid by construction), or one case in ten the control. */
export function mutatePolicy(rng: Rng): PolicyCase {
  const doc = base();
  const docker = (doc.transports as Record<string, Record<string, Record<string, unknown>[]>>).docker;
  const req = docker["registry.example.io/app"][0];
  const kind = rng.int(10);
  let what: string;
  switch (kind) {
    case 0:
      doc.default = rng.pick([...WRONG, []]);
      what = `default = ${JSON.stringify(doc.default)}`;
      break;
    case 1:
      delete doc.default;
      what = "default missing";
      break;
    case 2: {
      const key = rng.pick(["keyPath", "type", "signedIdentity"]);
      req[key] = rng.pick(WRONG.filter((w) => typeof w !== "string"));
      what = `${key} of the wrong type`;
      break;
    }
    case 3: {
      const key = rng.pick(["keyPaht", "KeyPath", "extra", "signedidentity", "type "]);
      req[key] = "x";
      what = `unknown member ${JSON.stringify(key)}`;
      break;
    }
    case 4:
      req.type = rng.pick(["sigstoresigned", "signedByX", "", "accept", "insecureacceptanything"]);
      what = `requirement type ${JSON.stringify(req.type)}`;
      break;
    case 5:
      if (rng.chance(0.5)) req.keyData = "Zm9v";
      else delete req.keyPath;
      what = "two key sources, or none";
      break;
    case 6:
      req.signedIdentity = rng.pick([{ type: "matchExactX" }, { type: "exactReference" }, {
        type: "remapIdentity",
        prefix: 1,
      }, {}]);
      what = `signedIdentity ${JSON.stringify(req.signedIdentity)}`;
      break;
    case 7: {
      const text = JSON.stringify(doc);
      return { text: text.slice(0, 1 + rng.int(text.length - 2)), valid: false, what: "truncated" };
    }
    case 8: {
      // A scope its transport refuses (the docker transport takes any string, as containers/image's does).
      const [transport, scope] = rng.pick([["oci", "relative/layout"], ["dir", "not/absolute"], [
        "docker-archive",
        "/x.tar",
      ], ["oci", "/a/../b"]]);
      (doc.transports as Record<string, unknown>)[transport] = { [scope]: [{ type: "reject" }] };
      what = `scope ${JSON.stringify(scope)} of ${transport}`;
      break;
    }
    default:
      return { text: JSON.stringify(doc, null, rng.int(3)), valid: true, what: "valid (control)" };
  }
  return { text: JSON.stringify(doc), valid: false, what };
}
