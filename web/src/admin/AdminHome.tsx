/** The organiser's overview: every event with what is taken and left, and the way to the door. */
import { useInfiniteQuery } from "@tanstack/react-query";
import { Link } from "react-router";
import { api, unwrap } from "../api/client";
import { Loading, ProblemAlert, Skeleton } from "../components/ui";
import { useTitle } from "../components/Layout";
import { money, when } from "../lib/format";

export default function AdminHome() {
  useTitle("Organiser");
  const events = useInfiniteQuery({
    queryKey: ["events", "admin"],
    initialPageParam: undefined as string | undefined,
    queryFn: ({ pageParam }) => unwrap(api.GET("/api/v1/events", { params: { query: { limit: 50, cursor: pageParam } } })),
    getNextPageParam: (last) => last.next_cursor ?? undefined,
    refetchInterval: 5_000,
  });
  const items = events.data?.pages.flatMap((p) => p.items) ?? [];
  return (
    <section>
      <div className="page-head">
        <h1>Organiser</h1>
        <div className="actions">
          <Link to="/admin/events/new" className="btn btn-primary">
            New event
          </Link>
          <Link to="/admin/check-in" className="btn">
            Door check-in
          </Link>
        </div>
      </div>
      <h2>Sales overview</h2>
      <ProblemAlert error={events.error} />
      {events.isPending ? (
        <Loading label="Loading events">
          <Skeleton lines={6} />
        </Loading>
      ) : (
        <div className="table-scroll">
          <table className="table">
            <caption className="visually-hidden">Events with places taken and left</caption>
            <thead>
              <tr>
                <th scope="col">Event</th>
                <th scope="col" className="col-wide">Date</th>
                <th scope="col" className="num">Capacity</th>
                <th scope="col" className="num">Held or sold</th>
                <th scope="col" className="num">Free</th>
                <th scope="col" className="col-wide">Price</th>
              </tr>
            </thead>
            <tbody>
              {items.map((e) => (
                <tr key={e.id}>
                  <th scope="row">
                    <Link to={`/admin/events/${e.id}`}>{e.title}</Link>
                  </th>
                  <td className="col-wide">{when(e.starts_at)}</td>
                  <td className="num">{e.capacity}</td>
                  <td className="num">{e.capacity - e.available}</td>
                  <td className="num">{e.available}</td>
                  <td className="col-wide">{money(e.price_cents, e.currency)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {events.hasNextPage && (
        <button type="button" className="btn" onClick={() => void events.fetchNextPage()}>
          Load more
        </button>
      )}
    </section>
  );
}
