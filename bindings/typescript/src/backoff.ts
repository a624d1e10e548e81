// Reconnection policy: the reaction each close code requires (CLOSE-RANGES) and the delay
// before the next attempt (CLIENT-BACKOFF-JITTER, CLOSE-RECONNECT-NOW, CLOSE-RETRY-AFTER).

/** What the client does after a close. */
export type Reaction =
  /** Do not reconnect; report the code and reason as an error (CLOSE-TERMINAL-NO-RECONNECT). */
  | "terminal"
  /** Back off with full jitter, then reconnect and resume (CLOSE-BACKOFF). */
  | "backoff"
  /** Reconnect after 0–1000 ms, then resume (CLOSE-RECONNECT-NOW). */
  | "reconnect"
  /** Get new credentials, then reconnect and resume (CLOSE-REFRESH). */
  | "refresh";

/**
 * The reaction a close code requires (CLOSE-RANGES): 1002, 1007, 1009 and 4000–4099 are
 * terminal; 4100–4199 back off; 1001 and 4200–4299 reconnect now; 4300–4399 refresh
 * credentials; every other code, and a loss without a close frame (1006), back off.
 */
export function reaction(code: number): Reaction {
  if (code === 1002 || code === 1007 || code === 1009 || (code >= 4000 && code <= 4099)) return "terminal";
  if (code === 1001 || (code >= 4200 && code <= 4299)) return "reconnect";
  if (code >= 4300 && code <= 4399) return "refresh";
  return "backoff";
}

/** Backoff settings; the defaults are the spec's client defaults (close-codes.md §4). */
export interface BackoffOptions {
  /** First backoff ceiling, in ms. Default 1000. */
  baseMs?: number;
  /** Largest backoff ceiling, in ms. Default 30 000. */
  capMs?: number;
  /** Consecutive failed attempts before giving up with a terminal error. Default: no limit. */
  maxAttempts?: number;
  /** Upper bound of the reconnect-now delay (1001, 42xx), in ms. Default 1000. */
  reconnectNowMaxMs?: number;
}

/** Full-jitter delay: uniform in [0, min(cap, base × 2^attempt)] (CLIENT-BACKOFF-JITTER). */
export function backoffDelay(attempt: number, o: BackoffOptions = {}, random: () => number = Math.random): number {
  const base = o.baseMs ?? 1000;
  const cap = o.capMs ?? 30_000;
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 52));
  return Math.floor(random() * ceiling);
}
