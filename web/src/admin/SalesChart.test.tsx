import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { SalesChart, fillHours } from "./SalesChart";

const hours = [
  { hour: "2030-03-01T10:00:00Z", tickets_sold: 2, revenue_cents: 5000 },
  { hour: "2030-03-01T13:00:00Z", tickets_sold: 6, revenue_cents: 15000 },
];

test("fills the quiet hours between the first and the last with zeros, keeping the latest", () => {
  const filled = fillHours(hours);
  expect(filled.map((h) => h.hour)).toEqual([
    "2030-03-01T10:00:00.000Z",
    "2030-03-01T11:00:00.000Z",
    "2030-03-01T12:00:00.000Z",
    "2030-03-01T13:00:00.000Z",
  ]);
  expect(filled.map((h) => h.tickets_sold)).toEqual([2, 0, 0, 6]);
  expect(fillHours(hours, 2).map((h) => h.tickets_sold)).toEqual([0, 6]);
  expect(fillHours([])).toEqual([]);
});

test("draws a bar per hour scaled to the busiest, and names the chart with a summary", () => {
  render(<SalesChart hours={hours} currency="EUR" />);
  const chart = screen.getByRole("img", { name: /over 4 hours: 8 tickets, €200\.00; busiest hour .* with 6 tickets/ });
  const bars = within(chart.closest("figure")!).getAllByTestId("sold-bar");
  expect(bars).toHaveLength(4);
  const height = (i: number) => Number(bars[i]!.getAttribute("height"));
  expect(height(3)).toBeGreaterThan(0);
  expect(height(0) / height(3)).toBeCloseTo(2 / 6, 5);
  expect(height(1)).toBe(0);
  // The revenue line goes through every hour.
  expect(chart.querySelector("polyline")!.getAttribute("points")!.split(" ")).toHaveLength(4);
});

test("the same numbers as a table, for screen readers and anyone who opens it", async () => {
  render(<SalesChart hours={hours} currency="EUR" />);
  await userEvent.click(screen.getByText("The figures per hour as a table"));
  const table = screen.getByRole("table", { name: "Tickets sold and revenue per hour" });
  const rows = within(table).getAllByRole("row");
  expect(rows).toHaveLength(3);
  expect(rows[1]).toHaveTextContent("2");
  expect(rows[1]).toHaveTextContent("€50.00");
  expect(rows[2]).toHaveTextContent("€150.00");
});

test("says so when nothing was sold yet", () => {
  render(<SalesChart hours={[]} currency="EUR" />);
  expect(screen.queryByRole("img")).toBeNull();
  expect(screen.getByText(/No sales yet/)).toBeInTheDocument();
});
