// A minimal typed event emitter (no dependency, works in browsers and Node).

/** Emits the events of map `E`, each with its payload type. */
export class Emitter<E> {
  private readonly listeners = new Map<keyof E, Set<(payload: never) => void>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof E>(event: K, listener: (payload: E[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (payload: never) => void);
    return () => this.off(event, listener);
  }

  /** Removes a listener. */
  off<K extends keyof E>(event: K, listener: (payload: E[K]) => void): void {
    this.listeners.get(event)?.delete(listener as (payload: never) => void);
  }

  /** Resolves with the next payload of `event`. */
  once<K extends keyof E>(event: K): Promise<E[K]> {
    return new Promise((resolve) => {
      const off = this.on(event, (p) => (off(), resolve(p)));
    });
  }

  protected emit<K extends keyof E>(event: K, payload: E[K]): void {
    for (const l of [...(this.listeners.get(event) ?? [])]) {
      try {
        (l as (payload: E[K]) => void)(payload);
      } catch (e) {
        // A throwing listener must not break the session; surface it asynchronously.
        setTimeout(() => {
          throw e;
        }, 0);
      }
    }
  }
}
