// Tab lifetimes through the Web Locks API: each tab holds a lock named after it for as long as
// it lives; whoever asks for that lock is granted it once the tab is gone (closed, crashed,
// navigated away). No timer is involved, so throttled background tabs are never taken for dead.

interface LockManager {
  request(name: string, options: { signal?: AbortSignal }, callback: () => Promise<void> | void): Promise<void>;
}

/** The Web Locks API, where there is one. */
export function locks(): LockManager | undefined {
  return (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks;
}

/** The lock a tab holds while it lives. */
export const tabLock = (tab: string): string => `@courier/client:tab:${tab}`;

/** Holds `name` until `release` is called; resolves once it is held. Aborted with `signal`. */
export function holdLock(name: string, signal?: AbortSignal): { held: Promise<void>; release: () => void } {
  let release = (): void => undefined;
  const m = locks();
  if (!m) return { held: Promise.resolve(), release };
  const done = new Promise<void>((r) => (release = r));
  const held = new Promise<void>((resolve, reject) => {
    m.request(name, { signal }, () => {
      resolve();
      return done;
    }).catch(reject);
  });
  return { held, release };
}

/** Calls `gone` once the tab `tab` no longer holds its lock. */
export function watchTab(tab: string, gone: () => void): void {
  locks()
    ?.request(tabLock(tab), {}, () => gone())
    .catch(() => undefined);
}
