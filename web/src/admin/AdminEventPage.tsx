/**
 * One event's sales: seats held, sold and free live from the event's availability stream, and
 * the sales figures the worker's analytics count from the domain-event stream (refreshed every
 * few seconds), with tickets sold and revenue per hour.
 */
import { useQuery } from "@tanstack/react-query";
import { Link, useParams } from "react-router";
import { api, unwrap } from "../api/client";
import { LiveBadge, Loading, ProblemAlert, Skeleton } from "../components/ui";
import { useTitle } from "../components/Layout";
import { money, when } from "../lib/format";
import { useAvailability } from "../lib/sse";
import { SalesChart } from "./SalesChart";

/** How often the figures are read again (the analytics follow the sale within moments). */
const FIGURES_EVERY_MS = 5000;

function percent(share: number | null | undefined): string {
  return share == null ? "–" : `${Math.round(share * 1000) / 10}%`;
}

export default function AdminEventPage() {
  const { id = "" } = useParams();
  const event = useQuery({
    queryKey: ["event", id],
    queryFn: () => unwrap(api.GET("/api/v1/events/{id}", { params: { path: { id } } })),
  });
  const { live, counts } = useAvailability(id);
  const figures = useQuery({
    queryKey: ["event-stats", id],
    queryFn: () => unwrap(api.GET("/api/v1/events/{id}/stats", { params: { path: { id } } })),
    refetchInterval: FIGURES_EVERY_MS,
  });
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
      <dl className="stats stats-live" aria-live="polite">
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
      <section aria-labelledby="figures-heading">
        <h2 id="figures-heading">Sales figures</h2>
        <p className="hint">Counted from the event stream; refreshed every few seconds.</p>
        {figures.isError ? (
          <ProblemAlert error={figures.error} />
        ) : figures.data ? (
          <>
            <dl className="stats stats-figures">
              {(
                [
                  ["Tickets sold", figures.data.totals.tickets_sold],
                  ["Revenue", money(figures.data.totals.revenue_cents, figures.data.currency)],
                  ["Holds", figures.data.totals.holds],
                  ["Hold to paid", percent(figures.data.conversion)],
                  ["Expiries", figures.data.totals.expiries],
                  ["Cancellations", figures.data.totals.cancellations],
                  ["Payment failures", figures.data.totals.payment_failures],
                  ["Checked in", figures.data.totals.tickets_checked_in],
                ] as const
              ).map(([label, value]) => (
                <div className="stat panel" key={label}>
                  <dt>{label}</dt>
                  <dd>{value}</dd>
                </div>
              ))}
            </dl>
            {figures.data.totals.refunds > 0 && (
              <p className="hint">
                Refunded: {figures.data.totals.tickets_refunded} tickets,{" "}
                {money(figures.data.totals.refunded_cents, figures.data.currency)}.
              </p>
            )}
            <h3>Per hour</h3>
            <SalesChart hours={figures.data.hourly} currency={figures.data.currency} />
          </>
        ) : (
          <Loading label="Loading the sales figures">
            <Skeleton lines={3} />
          </Loading>
        )}
      </section>
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
