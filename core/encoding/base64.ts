/**
 * Standard base64 (RFC 4648 §4, padded), as Go's `base64.StdEncoding`. Two decoders, on purpose:
 *
 * - {@linkcode base64Decode}: strict and quiet — no line breaks or other characters, `undefined` on bad input.
 *   For PEM bodies (already joined), key material and JSON fields where the caller words its own error.
 * - {@linkcode goBase64Decode}: a replica of Go's `StdEncoding.DecodeString` — skips `\r`/`\n` and throws Go's
 *   `illegal base64 data at input byte <n>`. For signatures, bundles and policy values, where airlock must accept
 *   what cosign and containers/image accept and fail with their texts.
 *
 * @module
 */
import { AirlockError, type ErrorCode } from "../errors.ts";

/**
 * Standard base64 (with padding) of `bytes`.
 */
export function base64Encode(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/**
 * Decodes standard base64 (padding required when the length calls for it, as Go's `StdEncoding`); returns
 * `undefined` on malformed input.
 */
export function base64Decode(s: string): Uint8Array | undefined {
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return undefined;
  try {
    return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_MAP = new Int16Array(256).fill(-1);
for (let i = 0; i < B64.length; i++) B64_MAP[B64.charCodeAt(i)] = i;

/**
 * Decodes standard, padded base64 exactly as Go's `base64.StdEncoding.DecodeString` does: `\r` and `\n` are
 * skipped, padding is required, non-zero trailing bits are tolerated; errors read
 * `illegal base64 data at input byte <n>`.
 *
 * @throws {AirlockError} with `code` (default `SIGNATURE_INVALID`)
 */
export function goBase64Decode(s: string, code: ErrorCode = "SIGNATURE_INVALID"): Uint8Array {
  const src = new TextEncoder().encode(s);
  const out: number[] = [];
  const fail = (at: number): never => {
    throw new AirlockError(code, `illegal base64 data at input byte ${at}`);
  };
  const isNl = (c: number) => c === 0x0a || c === 0x0d;
  let si = 0;
  while (si < src.length) {
    const q: number[] = [];
    let j = 0;
    let done = false;
    for (; j < 4; j++) {
      if (si === src.length) {
        if (j === 0) {
          done = true;
          break;
        }
        fail(si - j);
      }
      const c = src[si++];
      const v = B64_MAP[c];
      if (v >= 0) {
        q.push(v);
        continue;
      }
      if (isNl(c)) {
        j--;
        continue;
      }
      if (c !== 0x3d) fail(si - 1);
      if (j < 2) fail(si - 1);
      if (j === 2) {
        while (si < src.length && isNl(src[si])) si++;
        if (si === src.length) fail(src.length);
        if (src[si] !== 0x3d) fail(si - 1);
        si++;
      }
      while (si < src.length && isNl(src[si])) si++;
      if (si < src.length) fail(si);
      done = true;
      break;
    }
    if (q.length >= 2) out.push(((q[0] << 2) | (q[1] >> 4)) & 0xff);
    if (q.length >= 3) out.push(((q[1] << 4) | (q[2] >> 2)) & 0xff);
    if (q.length >= 4) out.push(((q[2] << 6) | q[3]) & 0xff);
    if (done) break;
  }
  return new Uint8Array(out);
}
