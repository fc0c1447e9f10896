/**
 * Server-sent events. Event availability is public, so it uses EventSource (which reconnects by
 * itself). A booking's stream needs the bearer token, which EventSource cannot send, so it is
 * read with fetch and parsed here; it reconnects with a growing pause.
 */
import { useEffect, useRef, useState } from "react";
import { useQueryClient } from "@tanstack/react-query";
import type { EventView } from "../api/client";
import { session } from "../api/session";

export type Availability = { available: number; held: number; sold: number };

/** Live availability of an event; keeps the event and seat queries fresh as it changes. */
export function useAvailability(eventId: string | undefined): { live: boolean; counts: Availability | null } {
  const qc = useQueryClient();
  const [live, setLive] = useState(false);
  const [counts, setCounts] = useState<Availability | null>(null);
  useEffect(() => {
    if (!eventId) return;
    let source: EventSource | null = null;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let closed = false;
    const open = () => {
      source = new EventSource(`/api/v1/events/${eventId}/stream`);
      source.onopen = () => setLive(true);
      source.addEventListener("availability", (e) => {
        const next = JSON.parse((e as MessageEvent<string>).data) as Availability;
        setCounts(next);
        qc.setQueryData<EventView>(["event", eventId], (old) => (old ? { ...old, available: next.available } : old));
        void qc.invalidateQueries({ queryKey: ["seats", eventId] });
        void qc.invalidateQueries({ queryKey: ["events"] });
      });
      source.onerror = () => {
        setLive(false);
        // EventSource retries network errors itself; after an HTTP error it gives up, so do it here.
        if (source?.readyState === EventSource.CLOSED && !closed) {
          retry = setTimeout(open, 3000);
        }
      };
    };
    open();
    return () => {
      closed = true;
      clearTimeout(retry);
      source?.close();
      setLive(false);
    };
  }, [eventId, qc]);
  return { live, counts };
}

/** Parses a text/event-stream body, calling `onEvent` per complete event. */
export async function readEventStream(
  body: ReadableStream<Uint8Array>,
  onEvent: (name: string, data: string) => void,
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut: number;
    while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
      let name = "message";
      const data: string[] = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent(name, data.join("\n"));
    }
  }
}

/** Follows a booking's status live; `onStatus` gets the current status, then each change. */
export function useBookingStatus(bookingId: string | undefined, onStatus: (status: string) => void): boolean {
  const [live, setLive] = useState(false);
  const latest = useRef(onStatus);
  latest.current = onStatus;
  useEffect(() => {
    if (!bookingId) return;
    const abort = new AbortController();
    let pause = 1000;
    const run = async () => {
      while (!abort.signal.aborted) {
        try {
          const token = session.get().token;
          const resp = await fetch(`/api/v1/bookings/${bookingId}/stream`, {
            headers: token ? { authorization: `Bearer ${token}`, accept: "text/event-stream" } : {},
            signal: abort.signal,
          });
          if (resp.ok && resp.body) {
            setLive(true);
            pause = 1000;
            await readEventStream(resp.body, (name, data) => {
              if (name === "status") latest.current((JSON.parse(data) as { status: string }).status);
            });
          }
        } catch {
          /* dropped: reconnect below */
        }
        setLive(false);
        if (abort.signal.aborted) return;
        await new Promise((r) => setTimeout(r, pause));
        pause = Math.min(pause * 2, 15000);
      }
    };
    void run();
    return () => abort.abort();
  }, [bookingId]);
  return live;
}
