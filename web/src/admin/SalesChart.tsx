/**
 * Tickets sold (bars) and revenue (line) per hour, as a small SVG of our own: no chart
 * library in the admin chunk. Screen readers get a summary as the image's name and the same
 * numbers as a table; everyone can open the table too.
 */
import { money } from "../lib/format";

export type Hour = { hour: string; tickets_sold: number; revenue_cents: number };

/** At most this many hours are drawn (the latest); the table lists them all. */
export const MAX_HOURS = 48;
const HOUR_MS = 3_600_000;

/** Every hour from the first to the last with activity (gaps filled with zeros), the latest `max`. */
export function fillHours(hours: Hour[], max = MAX_HOURS): Hour[] {
  if (hours.length === 0) return [];
  const byTime = new Map(hours.map((h) => [Date.parse(h.hour), h]));
  const times = [...byTime.keys()].sort((a, b) => a - b);
  const last = times[times.length - 1]!;
  const first = Math.max(times[0]!, last - (max - 1) * HOUR_MS);
  const out: Hour[] = [];
  for (let t = first; t <= last; t += HOUR_MS) {
    const h = byTime.get(t);
    out.push({ hour: new Date(t).toISOString(), tickets_sold: h?.tickets_sold ?? 0, revenue_cents: h?.revenue_cents ?? 0 });
  }
  return out;
}

export function hourLabel(iso: string): string {
  return new Intl.DateTimeFormat("en", { month: "short", day: "numeric", hour: "numeric" }).format(new Date(iso));
}

/** Under the bars: the hour alone, with the day where a day starts (and at the first bar). */
function axisLabel(iso: string, first: boolean): string {
  const d = new Date(iso);
  return first || d.getHours() === 0 ? hourLabel(iso) : new Intl.DateTimeFormat("en", { hour: "numeric" }).format(d);
}

const W = 640;
const H = 220;
const PAD = { top: 18, right: 84, bottom: 38, left: 44 };

export function SalesChart({ hours, currency }: { hours: Hour[]; currency: string }) {
  const filled = fillHours(hours);
  if (filled.length === 0) return <p className="hint">No sales yet: the chart appears with the first hold.</p>;
  const maxSold = Math.max(1, ...filled.map((h) => h.tickets_sold));
  const maxRevenue = Math.max(1, ...filled.map((h) => h.revenue_cents));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / filled.length;
  const barW = Math.max(2, Math.min(28, slot * 0.6));
  const x = (i: number) => PAD.left + slot * i + slot / 2;
  const ySold = (n: number) => PAD.top + plotH - (n / maxSold) * plotH;
  const yRevenue = (c: number) => PAD.top + plotH - (c / maxRevenue) * plotH;
  const totalSold = filled.reduce((s, h) => s + h.tickets_sold, 0);
  const totalRevenue = filled.reduce((s, h) => s + h.revenue_cents, 0);
  const best = filled.reduce((a, b) => (b.tickets_sold > a.tickets_sold ? b : a));
  const summary =
    `Tickets sold and revenue per hour over ${filled.length} hour${filled.length === 1 ? "" : "s"}: ` +
    `${totalSold} ticket${totalSold === 1 ? "" : "s"}, ${money(totalRevenue, currency)}` +
    (best.tickets_sold > 0 ? `; busiest hour ${hourLabel(best.hour)} with ${best.tickets_sold} tickets.` : ".");
  // A label under every bar when they fit, else about five.
  const every = Math.max(1, Math.ceil(filled.length / 5));
  const line = filled.map((h, i) => `${x(i).toFixed(1)},${yRevenue(h.revenue_cents).toFixed(1)}`).join(" ");
  return (
    <figure className="sales-chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={summary} preserveAspectRatio="xMidYMid meet">
        <line className="axis" x1={PAD.left} x2={W - PAD.right} y1={PAD.top + plotH} y2={PAD.top + plotH} />
        <text className="tick" x={PAD.left - 8} y={PAD.top + 5} textAnchor="end">
          {maxSold}
        </text>
        <text className="tick" x={PAD.left - 8} y={PAD.top + plotH} textAnchor="end">
          0
        </text>
        <text className="tick tick-revenue" x={W - PAD.right + 8} y={PAD.top + 5}>
          {money(maxRevenue, currency)}
        </text>
        {filled.map((h, i) => (
          <rect
            key={h.hour}
            className="bar"
            data-testid="sold-bar"
            x={x(i) - barW / 2}
            y={ySold(h.tickets_sold)}
            width={barW}
            height={PAD.top + plotH - ySold(h.tickets_sold)}
          />
        ))}
        <polyline className="revenue-line" points={line} fill="none" />
        {filled.map((h, i) => (
          <circle key={h.hour} className="revenue-dot" cx={x(i)} cy={yRevenue(h.revenue_cents)} r={3} />
        ))}
        {filled.map((h, i) =>
          i % every === 0 ? (
            <text key={h.hour} className="tick" x={x(i)} y={H - 10} textAnchor="middle">
              {axisLabel(h.hour, i === 0)}
            </text>
          ) : null,
        )}
      </svg>
      <figcaption>
        <span className="chart-key chart-key-sold">Tickets sold (bars, left scale)</span>{" "}
        <span className="chart-key chart-key-revenue">Revenue (line, right scale)</span>
      </figcaption>
      <details className="chart-table">
        <summary>The figures per hour as a table</summary>
        <div className="table-scroll">
          <table className="table">
            <caption className="visually-hidden">Tickets sold and revenue per hour</caption>
            <thead>
              <tr>
                <th scope="col">Hour</th>
                <th scope="col" className="num">
                  Tickets sold
                </th>
                <th scope="col" className="num">
                  Revenue
                </th>
              </tr>
            </thead>
            <tbody>
              {hours.map((h) => (
                <tr key={h.hour}>
                  <th scope="row">{hourLabel(h.hour)}</th>
                  <td className="num">{h.tickets_sold}</td>
                  <td className="num">{money(h.revenue_cents, currency)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}
