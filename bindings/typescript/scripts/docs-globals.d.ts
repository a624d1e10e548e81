// Names the docs' TypeScript examples use without declaring them: the reader's own application
// (scripts/docs-check.mjs compiles every example against these).
import type { CourierClient } from "@courier/client";
import type { ReactNode } from "react";

declare global {
  /** A client created elsewhere in the reader's application. */
  const client: CourierClient;
  /** The application's rendering. */
  function render(value: unknown): void;
  function show(url: string): void;
  function reloadHistory(): void;
  const root: { render(node: ReactNode): void };
  function Line(props: { msg: unknown }): ReactNode;
  function Composer(props: { onSend: (text: string) => void }): ReactNode;
}
export {};
