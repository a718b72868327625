/**
 * Hostile key files for the hostile-input suite: an encrypted cosign key (the sigstore format: PEM around a JSON
 * envelope, scrypt, NaCl secretbox) mutated by a seeded generator — the PEM armour, the envelope's members and
 * their types, the scrypt parameters (including ones that would cost minutes or gigabytes), salt, nonce and
 * ciphertext — and the passphrase changed. Every mutation is invalid by construction; only the untouched file with
 * its passphrase opens.
 *
 * @module
 */
import type { Rng } from "./rng.ts";

/** One key file case. */
export interface KeyCase {
  /** The file's text. */
  readonly pem: string;
  /** The passphrase given. */
  readonly passphrase: string;
  /** Whether this is the untouched file with its passphrase. */
  readonly intact: boolean;
  /** What was done. */
  readonly what: string;
  /** Whether opening it runs scrypt (the slow cases; the generator keeps them rare). */
  readonly slow: boolean;
}

/**
 * A mutation of `pem` (an encrypted key whose passphrase is `passphrase`).
 */
export function mutateKey(rng: Rng, pem: string, passphrase: string): KeyCase {
  const lines = pem.trim().split("\n");
  const header = lines[0];
  const footer = lines[lines.length - 1];
  const envelope = JSON.parse(atob(lines.slice(1, -1).join(""))) as Record<string, Record<string, unknown>>;
  const armour = (json: string) => `${header}\n${btoa(json).replace(/.{64}/g, "$&\n")}\n${footer}\n`;
  const withEnvelope = (e: unknown, what: string, slow = false): KeyCase => ({
    pem: armour(JSON.stringify(e)),
    passphrase,
    intact: false,
    what,
    slow,
  });
  const clone = () => JSON.parse(JSON.stringify(envelope)) as Record<string, Record<string, unknown>>;
  const wrong = [null, 1, "x", true, [], {}, -1, 1e300];
  const kind = rng.int(12);
  switch (kind) {
    case 0:
      return {
        pem: pem.replace(header, "-----BEGIN " + rng.pick(["PRIVATE KEY", "PUBLIC KEY", "X", ""]) + "-----"),
        passphrase,
        intact: false,
        what: "PEM type changed",
        slow: false,
      };
    case 1:
      return {
        pem: pem.replace(footer, ""),
        passphrase,
        intact: false,
        what: "PEM end missing",
        slow: false,
      };
    case 2: {
      const body = lines.slice(1, -1).join("\n");
      const at = rng.int(body.length);
      return {
        pem: `${header}\n${body.slice(0, at)}${rng.pick(["!", "%", "\u0000", "é"])}${
          body.slice(at + 1)
        }\n${footer}\n`,
        passphrase,
        intact: false,
        what: "base64 broken",
        slow: false,
      };
    }
    case 3: {
      const e = clone();
      e.kdf.params = {
        ...(e.kdf.params as object),
        N: rng.pick([0, 1, 3, 1024, 2 ** 20, 2 ** 30, 2 ** 31, -32768, 32768.5]),
      };
      return withEnvelope(e, `scrypt N ${JSON.stringify((e.kdf.params as { N: unknown }).N)}`);
    }
    case 4: {
      const e = clone();
      e.kdf.params = {
        ...(e.kdf.params as object),
        [rng.pick(["r", "p"])]: rng.pick([0, 2, 64, 2 ** 20, -1]),
      };
      return withEnvelope(e, "scrypt r/p changed");
    }
    case 5: {
      const e = clone();
      e[rng.pick(["kdf", "cipher"])].name = rng.pick(["", "pbkdf2", "aes", "SCRYPT", "nacl/secretbox "]);
      return withEnvelope(e, "algorithm name changed");
    }
    case 6: {
      const e = clone();
      const top = rng.pick(["kdf", "cipher", "ciphertext"]);
      (e as Record<string, unknown>)[top] = rng.pick(wrong);
      return withEnvelope(e, `${top} of the wrong type`);
    }
    case 7: {
      const e = clone();
      e.kdf.salt = rng.pick(["", "AA==", "%%", "A".repeat(100)]);
      return withEnvelope(e, "salt changed", true);
    }
    case 8: {
      const e = clone();
      e.cipher.nonce = rng.pick(["", "AAAA", "A".repeat(44), "%%%"]);
      return withEnvelope(e, "nonce changed");
    }
    case 9: {
      const e = clone();
      const ct = atob(e.ciphertext as unknown as string);
      const at = rng.int(ct.length);
      const flipped = ct.slice(0, at) + String.fromCharCode(ct.charCodeAt(at) ^ 1) + ct.slice(at + 1);
      (e as Record<string, unknown>).ciphertext = rng.chance(0.5) ? btoa(flipped) : btoa(ct.slice(0, at));
      return withEnvelope(e, "ciphertext altered", true);
    }
    case 10:
      return {
        pem,
        passphrase: passphrase + rng.pick(["x", " ", "\n"]),
        intact: false,
        what: "wrong passphrase",
        slow: true,
      };
    default:
      return { pem, passphrase, intact: true, what: "intact (control)", slow: true };
  }
}
