/** The signed-in user's bookings, newest first, with their status and a cancel button where allowed. */
import { useInfiniteQuery, useQueries } from "@tanstack/react-query";
import { Link } from "react-router";
import { api, unwrap, type BookingView } from "../api/client";
import { Loading, ProblemAlert, Skeleton } from "../components/ui";
import { useTitle } from "../components/Layout";
import { money, when } from "../lib/format";
import { CancelButton } from "./BookingPage";

export default function MyBookingsPage() {
  useTitle("My bookings");
  const bookings = useInfiniteQuery({
    queryKey: ["bookings"],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) =>
      unwrap(api.GET("/api/v1/bookings", { params: { query: { limit: 20, cursor: pageParam } } })),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
  });
  const items = bookings.data?.pages.flatMap((p) => p.items) ?? [];
  const eventIds = [...new Set(items.map((b) => b.event_id))];
  const events = useQueries({
    queries: eventIds.map((id) => ({
      queryKey: ["event", id],
      queryFn: () => unwrap(api.GET("/api/v1/events/{id}", { params: { path: { id } } })),
      staleTime: 60_000,
    })),
  });
  const titles = new Map(events.flatMap((q) => (q.data ? [[q.data.id, q.data] as const] : [])));

  return (
    <section>
      <h1>My bookings</h1>
      <ProblemAlert error={bookings.error} />
      {bookings.isPending ? (
        <Loading label="Loading your bookings">
          <Skeleton lines={8} />
        </Loading>
      ) : items.length === 0 ? (
        <p className="empty">
          No bookings yet. <Link to="/">Find an event</Link>.
        </p>
      ) : (
        <ul className="booking-list">
          {items.map((b) => (
            <Row key={b.id} booking={b} event={titles.get(b.event_id)} />
          ))}
        </ul>
      )}
      {bookings.hasNextPage && (
        <button type="button" className="btn" onClick={() => void bookings.fetchNextPage()}>
          Load more
        </button>
      )}
    </section>
  );
}

function Row({ booking, event }: { booking: BookingView; event: { title: string; starts_at: string } | undefined }) {
  const live = booking.status === "held" || booking.status === "confirmed";
  return (
    <li className="booking-row panel">
      <div className="booking-main">
        <h2 className="booking-title">
          <Link to={`/bookings/${booking.id}`}>{event?.title ?? "Event"}</Link>
        </h2>
        <p className="hint">
          {event ? when(event.starts_at) + " · " : ""}
          {booking.seats.length ? `Seats ${booking.seats.join(", ")}` : `${booking.quantity} × ticket`} ·{" "}
          {money(booking.amount_cents, booking.currency)}
        </p>
      </div>
      <span className={`pill pill-${booking.status}`}>
        {booking.status}
        {booking.cancel_reason ? ` (${booking.cancel_reason.replace(/_/g, " ")})` : ""}
      </span>
      {live && <CancelButton booking={booking} label="Cancel" />}
    </li>
  );
}
