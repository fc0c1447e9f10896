/** Browse and search events: text, venue, date range, only with seats left; "Load more" pages by cursor. */
import { useInfiniteQuery } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router";
import { api, unwrap, type EventView } from "../api/client";
import { money, when } from "../lib/format";
import { Loading, ProblemAlert, Skeleton } from "../components/ui";
import { useTitle } from "../components/Layout";

const PAGE = 12;

/** Start of a day (from) or its end (to), as RFC 3339, from a date input's value. */
function dayBound(day: string, end: boolean): string | undefined {
  if (!day) return undefined;
  const d = new Date(`${day}T${end ? "23:59:59" : "00:00:00"}`);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

export function EventsPage() {
  useTitle("Events");
  const [params, setParams] = useSearchParams();
  const filters = {
    q: params.get("q") ?? "",
    venue: params.get("venue") ?? "",
    from: params.get("from") ?? "",
    to: params.get("to") ?? "",
    available: params.get("available") === "1",
  };
  const [draft, setDraft] = useState(filters);

  const query = useInfiniteQuery({
    queryKey: ["events", filters],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.GET("/api/v1/events", {
          params: {
            query: {
              q: filters.q || undefined,
              venue: filters.venue || undefined,
              from: dayBound(filters.from, false),
              to: dayBound(filters.to, true),
              available: filters.available || undefined,
              limit: PAGE,
              cursor: pageParam,
            },
          },
        }),
      ),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    // Availability on the cards stays current without a stream per card.
    refetchInterval: 10_000,
  });

  const onSearch = (e: FormEvent) => {
    e.preventDefault();
    const next = new URLSearchParams();
    if (draft.q.trim()) next.set("q", draft.q.trim());
    if (draft.venue.trim()) next.set("venue", draft.venue.trim());
    if (draft.from) next.set("from", draft.from);
    if (draft.to) next.set("to", draft.to);
    if (draft.available) next.set("available", "1");
    setParams(next);
  };

  const events = query.data?.pages.flatMap((p) => p.items) ?? [];

  return (
    <section>
      <h1>Events</h1>
      <form className="search" role="search" aria-label="Search events" onSubmit={onSearch}>
        <div className="field search-q">
          <label htmlFor="q">Search</label>
          <input id="q" type="search" value={draft.q} placeholder="Artist, title, keyword"
            onChange={(e) => setDraft({ ...draft, q: e.target.value })} />
        </div>
        <div className="field">
          <label htmlFor="venue">Venue</label>
          <input id="venue" value={draft.venue} onChange={(e) => setDraft({ ...draft, venue: e.target.value })} />
        </div>
        <div className="field">
          <label htmlFor="from">From</label>
          <input id="from" type="date" value={draft.from} onChange={(e) => setDraft({ ...draft, from: e.target.value })} />
        </div>
        <div className="field">
          <label htmlFor="to">To</label>
          <input id="to" type="date" value={draft.to} onChange={(e) => setDraft({ ...draft, to: e.target.value })} />
        </div>
        <div className="field field-check">
          <input id="available" type="checkbox" checked={draft.available}
            onChange={(e) => setDraft({ ...draft, available: e.target.checked })} />
          <label htmlFor="available">Only with seats left</label>
        </div>
        <button type="submit" className="btn btn-primary">Search</button>
      </form>

      <ProblemAlert error={query.error} />
      {query.isPending ? (
        <Loading label="Loading events">
          <ul className="cards">
            {Array.from({ length: 6 }, (_, i) => (
              <li key={i} className="card">
                <Skeleton lines={4} />
              </li>
            ))}
          </ul>
        </Loading>
      ) : events.length === 0 && !query.isError ? (
        <p className="empty">No events match your search.</p>
      ) : (
        <ul className="cards" aria-label="Events">
          {events.map((e) => (
            <EventCard key={e.id} event={e} />
          ))}
        </ul>
      )}
      {query.hasNextPage && (
        <div className="load-more">
          <button type="button" className="btn" onClick={() => void query.fetchNextPage()} disabled={query.isFetchingNextPage}>
            {query.isFetchingNextPage ? "Loading…" : "Load more events"}
          </button>
        </div>
      )}
    </section>
  );
}

export function Availability({ event }: { event: Pick<EventView, "available" | "capacity"> }) {
  if (event.available <= 0) return <span className="pill pill-soldout">Sold out</span>;
  const low = event.available <= Math.max(5, event.capacity / 10);
  return (
    <span className={low ? "pill pill-low" : "pill pill-ok"}>
      {event.available} {event.available === 1 ? "place" : "places"} left
    </span>
  );
}

function EventCard({ event }: { event: EventView }) {
  return (
    <li className="card event-card">
      <p className="card-date">
        <time dateTime={event.starts_at}>{when(event.starts_at)}</time>
      </p>
      <h2 className="card-title">
        <Link to={`/events/${event.id}`}>{event.title}</Link>
      </h2>
      <p className="card-venue">{event.venue}</p>
      <div className="card-foot">
        <span className="price">{money(event.price_cents, event.currency)}</span>
        <Availability event={event} />
      </div>
      <p className="card-kind">{event.seated ? "Reserved seating" : "General admission"}</p>
    </li>
  );
}
