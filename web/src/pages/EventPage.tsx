/**
 * One event: details, live availability, and the hold: a quantity (general admission) or seats
 * on the live seat map (reserved seating), or the best N seats together.
 */
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useMemo, useState } from "react";
import { Link, useLocation, useNavigate, useParams } from "react-router";
import { api, unwrap, type BookingView, type EventView } from "../api/client";
import { ApiError } from "../api/problem";
import { LiveBadge, Loading, ProblemAlert, Skeleton } from "../components/ui";
import { QuantityPicker } from "../components/QuantityPicker";
import { SeatMap } from "../components/SeatMap";
import { useTitle } from "../components/Layout";
import { useAvailability } from "../lib/sse";
import { useSession } from "../lib/auth";
import { money, newKey, when } from "../lib/format";
import { Availability } from "./EventsPage";

export function EventPage() {
  const { id = "" } = useParams();
  const event = useQuery({
    queryKey: ["event", id],
    queryFn: () => unwrap(api.GET("/api/v1/events/{id}", { params: { path: { id } } })),
  });
  const { live, counts } = useAvailability(id);
  useTitle(event.data?.title ?? "Event");

  if (event.isPending)
    return (
      <Loading label="Loading the event">
        <Skeleton lines={2} className="skeleton-title" />
        <Skeleton lines={6} />
      </Loading>
    );
  if (event.isError)
    return (
      <section>
        <h1>Event unavailable</h1>
        <ProblemAlert error={event.error} />
        <Link to="/">Back to all events</Link>
      </section>
    );
  const e = event.data;
  const soldOut = e.available <= 0;
  return (
    <article className="event-page">
      <header className="event-head">
        <p className="card-date">
          <time dateTime={e.starts_at}>{when(e.starts_at)}</time> · {e.venue}
        </p>
        <h1>{e.title}</h1>
        <div className="event-meta">
          <span className="price">{money(e.price_cents, e.currency)}</span>
          <Availability event={e} />
          <LiveBadge live={live} />
        </div>
        {counts && (
          <p className="visually-hidden" aria-live="polite">
            {counts.available} places left
          </p>
        )}
      </header>
      {e.description && <p className="description">{e.description}</p>}
      {soldOut ? (
        <div className="alert alert-info" role="status">
          <p>
            <strong>Sold out.</strong> Every place is held or sold; held places come back if their buyers do not pay, so
            this page updates by itself.
          </p>
        </div>
      ) : e.seated ? (
        <SeatedHold event={e} />
      ) : (
        <GeneralHold event={e} />
      )}
    </article>
  );
}

/** Posts a hold; sends a visitor without a session to log in first and back. */
function useHold(event: EventView) {
  const navigate = useNavigate();
  const location = useLocation();
  const { user } = useSession();
  const qc = useQueryClient();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const hold = async (body: { quantity: number } | { seats: string[] }) => {
    if (!user) {
      navigate(`/login?next=${encodeURIComponent(location.pathname)}`);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const booking: BookingView = await unwrap(
        api.POST("/api/v1/events/{id}/bookings", {
          params: { path: { id: event.id }, header: { "Idempotency-Key": newKey() } },
          body,
        }),
      );
      qc.setQueryData(["booking", booking.id], booking);
      navigate(`/bookings/${booking.id}`);
    } catch (err) {
      setError(err);
      void qc.invalidateQueries({ queryKey: ["seats", event.id] });
      void qc.invalidateQueries({ queryKey: ["event", event.id] });
    } finally {
      setBusy(false);
    }
  };
  return { hold, error, busy, signedIn: !!user };
}

function GeneralHold({ event }: { event: EventView }) {
  const max = Math.max(1, Math.min(event.max_per_booking, event.max_per_user, event.available));
  const [qty, setQty] = useState(1);
  const { hold, error, busy, signedIn } = useHold(event);
  const quantity = Math.min(qty, max);
  return (
    <form
      className="panel hold-panel"
      aria-label="Choose tickets"
      onSubmit={(e) => {
        e.preventDefault();
        void hold({ quantity });
      }}
    >
      <h2>Tickets</h2>
      <QuantityPicker value={quantity} max={max} onChange={setQty} />
      <p className="total">
        Total <strong>{money(event.price_cents * quantity, event.currency)}</strong>
      </p>
      <ProblemAlert error={error} />
      <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
        {busy ? "Holding…" : signedIn ? `Hold ${quantity} ${quantity === 1 ? "ticket" : "tickets"}` : "Log in to book"}
      </button>
      <p className="hint">Held tickets are yours while you pay.</p>
    </form>
  );
}

function SeatedHold({ event }: { event: EventView }) {
  const seats = useQuery({
    queryKey: ["seats", event.id],
    queryFn: () => unwrap(api.GET("/api/v1/events/{id}/seats", { params: { path: { id: event.id } } })),
  });
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [taken, setTaken] = useState<string[]>([]);
  const [best, setBest] = useState(2);
  const { hold, error, busy, signedIn } = useHold(event);

  // A chosen seat someone else took meanwhile leaves the selection, and the buyer is told.
  const status = useMemo(() => {
    const m = new Map<string, string>();
    seats.data?.sections.forEach((s) => s.rows.forEach((r) => r.seats.forEach((x) => m.set(x.id, x.status))));
    return m;
  }, [seats.data]);
  useEffect(() => {
    const lost = [...selected].filter((id) => status.get(id) !== undefined && status.get(id) !== "free");
    if (lost.length) {
      setSelected((s) => new Set([...s].filter((id) => !lost.includes(id))));
      setTaken(lost);
    }
  }, [status, selected]);

  const limit = Math.min(event.max_per_booking, event.max_per_user);
  const toggle = (id: string) => {
    setTaken([]);
    setSelected((s) => {
      const n = new Set(s);
      if (n.has(id)) n.delete(id);
      else if (n.size < limit) n.add(id);
      return n;
    });
  };
  const conflict = error instanceof ApiError && error.code === "seats_unavailable";
  const maxBest = Math.max(1, Math.min(limit, event.available));

  return (
    <section className="panel seat-panel" aria-labelledby="seats-h">
      <h2 id="seats-h">Choose your seats</h2>
      <p className="hint">
        Pick up to {limit} seats on the map (click, or Tab into the map and use the arrow keys and Space), or let us find
        the best seats together.
      </p>
      {seats.isPending ? (
        <Loading label="Loading the seat map">
          <Skeleton lines={8} className="skeleton-map" />
        </Loading>
      ) : seats.isError ? (
        <ProblemAlert error={seats.error} />
      ) : (
        <SeatMap seats={seats.data} selected={selected} onToggle={toggle} disabled={busy} />
      )}
      {taken.length > 0 && (
        <div className="alert alert-warn" role="alert">
          <p>
            {taken.length === 1 ? `Seat ${taken[0]} was` : `Seats ${taken.join(", ")} were`} just taken by someone else.
            Please choose another.
          </p>
        </div>
      )}
      {error !== null && (
        <div role="alert" className="alert alert-error">
          <p>
            {conflict ? "Someone else got there first: " : ""}
            {error instanceof Error ? (error as Error).message : "the hold failed"}
          </p>
        </div>
      )}
      <div className="seat-actions">
        <div className="selection" aria-live="polite">
          {selected.size === 0 ? (
            <p>No seats chosen yet.</p>
          ) : (
            <p>
              Chosen: <strong>{[...selected].join(", ")}</strong> ·{" "}
              {money(event.price_cents * selected.size, event.currency)}
            </p>
          )}
        </div>
        <button type="button" className="btn btn-primary" disabled={busy || (signedIn && selected.size === 0)}
          onClick={() => void (selected.size ? hold({ seats: [...selected] }) : hold({ quantity: 1 }))}>
          {busy ? "Holding…" : signedIn ? `Hold ${selected.size || ""} ${selected.size === 1 ? "seat" : "seats"}`.replace("  ", " ") : "Log in to book"}
        </button>
      </div>
      <form
        className="best"
        onSubmit={(e) => {
          e.preventDefault();
          void hold({ quantity: Math.min(best, maxBest) });
        }}
      >
        <div className="field">
          <label htmlFor="best-n">Best seats together</label>
          <input id="best-n" type="number" min={1} max={maxBest} value={Math.min(best, maxBest)}
            onChange={(e) => setBest(Math.max(1, Math.min(maxBest, Math.trunc(Number(e.target.value)) || 1)))} />
        </div>
        <button type="submit" className="btn" disabled={busy}>
          Find the best {Math.min(best, maxBest)} together
        </button>
      </form>
    </section>
  );
}
