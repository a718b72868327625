/**
 * The watchdog of streamed transfers: a blob of any size has no total time limit, but a transfer that moves no
 * data for `requestTimeoutMs` fails with TIMEOUT.
 *
 * @module
 */

import { AirlockError } from "../errors.ts";

/**
 * Aborts its signal with a TIMEOUT error when it is not re-armed within `ms`. Arm it before a request and on
 * every chunk; stop it when the transfer ends.
 *
 * @example
 * ```ts
 * const idle = new IdleTimer(60_000, "reading blob sha256:… in r/app: no data for 60 s");
 * idle.arm();
 * const res = await fetch(url, { signal: idle.signal(opts.signal) }).catch((e) => { throw idle.explain(e); });
 * ```
 */
export class IdleTimer {
  readonly #ms: number;
  readonly #message: string;
  readonly #controller = new AbortController();
  #timer?: ReturnType<typeof setTimeout>;
  #timedOut = false;
  #other?: AbortSignal;
  readonly #follow = () => this.#controller.abort(this.#other?.reason);

  /**
   * @param ms how long the transfer may stay idle
   * @param message the TIMEOUT error's message
   */
  constructor(ms: number, message: string) {
    this.#ms = ms;
    this.#message = message;
  }

  /** Starts (or restarts) the countdown. */
  arm(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timedOut = true;
      this.#controller.abort(new AirlockError("TIMEOUT", this.#message));
    }, this.#ms);
  }

  /** Stops the countdown (the transfer ended, or failed otherwise) and stops following the other signal. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#other?.removeEventListener("abort", this.#follow);
  }

  /** Whether the transfer went idle for too long. */
  get fired(): boolean {
    return this.#timedOut;
  }

  /**
   * This timer's abort signal, also aborted by `other` when given (until {@linkcode IdleTimer.stop}; not with
   * `AbortSignal.any`, which would keep a record on `other` for as long as it lives).
   */
  signal(other?: AbortSignal): AbortSignal {
    if (other && this.#other === undefined) {
      this.#other = other;
      if (other.aborted) this.#follow();
      else other.addEventListener("abort", this.#follow, { once: true });
    }
    return this.#controller.signal;
  }

  /** The error to report for a failure `e`: the TIMEOUT when the timer fired (it caused the failure), else `e`. */
  explain(e: unknown): unknown {
    return this.#timedOut ? this.#controller.signal.reason : e;
  }
}
