/** One event's sales, live from the event stream: held, sold, free and revenue. */
import { useQuery } from "@tanstack/react-query";
import { Link, useParams } from "react-router";
import { api, unwrap } from "../api/client";
import { LiveBadge, Loading, ProblemAlert, Skeleton } from "../components/ui";
import { useTitle } from "../components/Layout";
import { money, when } from "../lib/format";
import { useAvailability } from "../lib/sse";

export default function AdminEventPage() {
  const { id = "" } = useParams();
  const event = useQuery({
    queryKey: ["event", id],
    queryFn: () => unwrap(api.GET("/api/v1/events/{id}", { params: { path: { id } } })),
  });
  const { live, counts } = useAvailability(id);
  useTitle(event.data ? `Sales: ${event.data.title}` : "Sales");
  if (event.isPending)
    return (
      <Loading label="Loading the event">
        <Skeleton lines={6} />
      </Loading>
    );
  if (event.isError) return <ProblemAlert error={event.error} />;
  const e = event.data;
  const stats = [
    ["Sold", counts?.sold],
    ["Held", counts?.held],
    ["Free", counts?.available ?? e.available],
    ["Revenue", counts ? money(counts.sold * e.price_cents, e.currency) : undefined],
  ] as const;
  return (
    <section>
      <p>
        <Link to="/admin">← All events</Link>
      </p>
      <div className="page-head">
        <h1>{e.title}</h1>
        <LiveBadge live={live} />
      </div>
      <p className="hint">
        {when(e.starts_at)} · {e.venue} · {e.seated ? "reserved seating" : "general admission"} · capacity {e.capacity}
      </p>
      <dl className="stats" aria-live="polite">
        {stats.map(([label, value]) => (
          <div className="stat panel" key={label}>
            <dt>{label}</dt>
            <dd>{value ?? <span className="skeleton-inline" aria-label="loading" />}</dd>
          </div>
        ))}
      </dl>
      <div className="meter" aria-hidden="true">
        <div className="meter-sold" style={{ width: `${((counts?.sold ?? 0) / Math.max(1, e.capacity)) * 100}%` }} />
        <div className="meter-held" style={{ width: `${((counts?.held ?? 0) / Math.max(1, e.capacity)) * 100}%` }} />
      </div>
      <p className="actions">
        <Link to={`/admin/events/${e.id}/edit`} className="btn">
          Edit event
        </Link>{" "}
        <Link to={`/events/${e.id}`} className="btn btn-quiet">
          Buyer's page
        </Link>{" "}
        <Link to={`/admin/events/${e.id}/check-in`} className="btn btn-quiet">
          Door check-in
        </Link>
      </p>
    </section>
  );
}
