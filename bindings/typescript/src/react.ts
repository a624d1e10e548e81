// `@courier/client/react`: React hooks over a Courier client. Its own entry point, so that code
// not importing it never loads React; `react` (18 or later) is an optional peer dependency.
//
//   <CourierProvider client={client}> ... </CourierProvider>
//   const state = useConnectionState();                      // "connecting" | "open" | ...
//   const chat = useChannel("room.lobby", { select: (m) => readChatMessage(m.payload) });
//   const { members } = usePresence("room.lobby");           // needs the `presence` feature
//
// Components that use one channel share one subscription: the channel is subscribed when the
// first of them mounts and unsubscribed when the last unmounts (after the current task, so the
// mount-unmount-mount of React's StrictMode does not churn the server).

import { createContext, createElement, useCallback, useContext, useEffect, useRef, useState, useSyncExternalStore, type ReactNode } from "react";

import type { ClientEvents, ClientState, CourierLike } from "./client.js";
import type * as v2 from "./gen/courier/v2/types.js";
import type { Payload } from "./runtime/wire.js";

const ClientContext = createContext<CourierLike | undefined>(undefined);

/** Makes `client` the one the hooks below use. The application owns it (creates and closes it). */
export function CourierProvider(props: { client: CourierLike; children?: ReactNode }): ReactNode {
  return createElement(ClientContext.Provider, { value: props.client }, props.children);
}

/** The client of the nearest `CourierProvider` (or `client`, when given). Throws without one. */
export function useCourier(client?: CourierLike): CourierLike {
  const c = useContext(ClientContext);
  const found = client ?? c;
  if (!found) throw new Error("useCourier: no client (wrap the tree in <CourierProvider client={...}>)");
  return found;
}

/** The connection state, re-rendering on every change (`connecting`, `open`, `reconnecting`, ...). */
export function useConnectionState(client?: CourierLike): ClientState {
  const c = useCourier(client);
  const subscribe = useCallback((changed: () => void) => c.on("state", changed), [c]);
  return useSyncExternalStore(subscribe, () => c.state, () => c.state);
}

// ---- shared subscriptions --------------------------------------------------------------------

interface Shared {
  count: number;
  ack: Promise<v2.SubscribeAck>;
}
const subscriptions = new WeakMap<CourierLike, Map<string, Shared>>();

/** Takes a reference on `channel`, subscribing when it is the first. */
function acquire(client: CourierLike, channel: string): Promise<v2.SubscribeAck> {
  let byChannel = subscriptions.get(client);
  if (!byChannel) subscriptions.set(client, (byChannel = new Map()));
  const m = byChannel;
  const held = m.get(channel);
  if (held) {
    held.count++;
    return held.ack;
  }
  const entry: Shared = { count: 1, ack: client.subscribe(channel) };
  // A refused subscription is forgotten, so that the next mount asks again.
  entry.ack.catch(() => {
    if (m.get(channel) === entry) m.delete(channel);
  });
  m.set(channel, entry);
  return entry.ack;
}

/** Drops a reference; the last one unsubscribes after the current task. */
function release(client: CourierLike, channel: string): void {
  const m = subscriptions.get(client);
  const entry = m?.get(channel);
  if (!m || !entry) return;
  entry.count--;
  if (entry.count > 0) return;
  setTimeout(() => {
    if (entry.count > 0 || m.get(channel) !== entry) return;
    m.delete(channel);
    // After a close the client has nothing to unsubscribe from; nothing to report either.
    client.unsubscribe(channel).catch(() => undefined);
  }, 0);
}

// ---- useChannel --------------------------------------------------------------------------------

/** The `recovery` event of a channel: `RECOVERY_STATUS_FAILED` means messages may have been lost. */
export type Recovery = ClientEvents["recovery"];

/** Options of `useChannel`. */
export interface ChannelOptions<T> {
  /**
   * Turns a message into the value kept in `messages` (for example a generated reader:
   * `(m) => readChatMessage(m.payload)`). A throw is reported in `error` and the message skipped.
   * Default: the message itself.
   */
  select?: (message: v2.Message) => T;
  /** Called for every message, in order, also when `limit` is 0. */
  onMessage?: (value: T, message: v2.Message) => void;
  /** Messages kept in `messages`, the most recent last. Default 100; 0 keeps none. */
  limit?: number;
  /** `false` leaves the channel alone (no subscription). Default true. */
  enabled?: boolean;
  /** A client other than the provider's. */
  client?: CourierLike;
}

/** What `useChannel` returns. */
export interface ChannelState<T> {
  /** `subscribing` until the first `subscribe_ack`; `error` when the subscription was refused. */
  status: "idle" | "subscribing" | "subscribed" | "error";
  /** The last `limit` messages received since mount, in order, without gaps or duplicates. */
  messages: readonly T[];
  /** The refusal of the subscription, or the last `select` failure. */
  error: Error | undefined;
  /** The last recovery outcome (after each reconnect). */
  recovery: Recovery | undefined;
  /** Publishes to this channel (see `CourierClient.publish`). */
  publish: (payload: Payload, options?: { id?: string }) => Promise<v2.PublishAck>;
}

/**
 * Subscribes to `channel` while the component is mounted and collects its messages. After a
 * reconnect the client resumes the channel by itself, so the component keeps receiving without
 * gaps or duplicates; `recovery` reports each outcome.
 */
export function useChannel<T = v2.Message>(channel: string, options: ChannelOptions<T> = {}): ChannelState<T> {
  const client = useCourier(options.client);
  const enabled = options.enabled ?? true;
  const limit = options.limit ?? 100;
  // The callbacks change on every render; the subscription must not.
  const latest = useRef(options);
  latest.current = options;
  const [state, setState] = useState<Omit<ChannelState<T>, "publish">>(() => ({
    status: enabled ? "subscribing" : "idle",
    messages: [],
    error: undefined,
    recovery: undefined,
  }));

  useEffect(() => {
    if (!enabled) {
      setState({ status: "idle", messages: [], error: undefined, recovery: undefined });
      return;
    }
    let live = true;
    setState({ status: "subscribing", messages: [], error: undefined, recovery: undefined });
    const offMessage = client.on("message", (m) => {
      if (!live || m.channel !== channel) return;
      const o = latest.current;
      let value: T;
      try {
        value = o.select ? o.select(m) : (m as unknown as T);
      } catch (e) {
        setState((s) => ({ ...s, error: e instanceof Error ? e : new Error(String(e)) }));
        return;
      }
      o.onMessage?.(value, m);
      if (limit > 0) setState((s) => ({ ...s, messages: [...s.messages, value].slice(-limit) }));
    });
    const offRecovery = client.on("recovery", (r) => {
      if (live && r.channel === channel) setState((s) => ({ ...s, recovery: r }));
    });
    acquire(client, channel).then(
      () => live && setState((s) => ({ ...s, status: "subscribed" })),
      (e: unknown) => live && setState((s) => ({ ...s, status: "error", error: e instanceof Error ? e : new Error(String(e)) })),
    );
    return () => {
      live = false;
      offMessage();
      offRecovery();
      release(client, channel);
    };
  }, [client, channel, enabled, limit]);

  const publish = useCallback((payload: Payload, o?: { id?: string }) => client.publish(channel, payload, o), [client, channel]);
  return { ...state, publish };
}

// ---- usePresence -------------------------------------------------------------------------------

/** What `usePresence` returns. */
export interface PresenceState {
  /** `loading` until the first `presence` reply; `error` when the query or subscription failed. */
  status: "idle" | "loading" | "ready" | "error";
  /** The channel's members in join order, this session included. */
  members: readonly v2.PresenceMember[];
  error: Error | undefined;
}

/**
 * Who is on `channel`: subscribes (sharing the subscription with `useChannel`), asks for the
 * member list and applies join and leave events after the reply (PRESENCE-CONSISTENT); asks
 * again after every resubscription, as members may have changed while disconnected. The client
 * must ask for the `presence` feature (`features: ["batch", "reauth", "presence"]`).
 */
export function usePresence(channel: string, options: { enabled?: boolean; client?: CourierLike } = {}): PresenceState {
  const client = useCourier(options.client);
  const enabled = options.enabled ?? true;
  const [state, setState] = useState<PresenceState>({ status: enabled ? "loading" : "idle", members: [], error: undefined });

  useEffect(() => {
    if (!enabled) {
      setState({ status: "idle", members: [], error: undefined });
      return;
    }
    let live = true;
    // Events sent before the reply are reflected in it; only later ones apply.
    let generation = 0;
    let answered = -1;
    setState({ status: "loading", members: [], error: undefined });
    const fail = (e: unknown): void => {
      if (live) setState((s) => ({ ...s, status: "error", error: e instanceof Error ? e : new Error(String(e)) }));
    };
    const query = (): void => {
      const g = ++generation;
      client.presence(channel).then((members) => {
        if (!live || g !== generation) return;
        answered = g;
        setState({ status: "ready", members, error: undefined });
      }, fail);
    };
    const offEvent = client.on("presence", (ev) => {
      if (!live || ev.channel !== channel || answered !== generation || !ev.member) return;
      const member = ev.member;
      setState((s) => {
        const rest = s.members.filter((m) => m.session_id !== member.session_id);
        return { ...s, members: ev.action === "PRESENCE_ACTION_JOIN" ? [...rest, member] : rest };
      });
    });
    // After a reconnect the channel is resubscribed: members may have changed meanwhile.
    const offRecovery = client.on("recovery", (r) => {
      if (live && r.channel === channel) query();
    });
    acquire(client, channel).then(() => live && query(), fail);
    return () => {
      live = false;
      offEvent();
      offRecovery();
      release(client, channel);
    };
  }, [client, channel, enabled]);

  return state;
}
