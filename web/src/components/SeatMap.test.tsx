import { render, screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { useState } from "react";
import { SeatMap } from "./SeatMap";
import type { SeatsView } from "../api/client";

const seats: SeatsView = {
  seated: true,
  sections: [
    {
      name: "Stalls",
      rows: [
        { label: "A", seats: [
          { id: "Stalls-A-1", number: 1, status: "free" },
          { id: "Stalls-A-2", number: 2, status: "held" },
          { id: "Stalls-A-3", number: 3, status: "sold" },
          { id: "Stalls-A-4", number: 4, status: "free" },
        ] },
        { label: "B", seats: [
          { id: "Stalls-B-1", number: 1, status: "free" },
          { id: "Stalls-B-2", number: 2, status: "free" },
        ] },
      ],
    },
  ],
};

function Harness({ data = seats }: { data?: SeatsView }) {
  const [sel, setSel] = useState<Set<string>>(new Set());
  return (
    <SeatMap seats={data} selected={sel}
      onToggle={(id) => setSel((s) => { const n = new Set(s); if (n.has(id)) n.delete(id); else n.add(id); return n; })} />
  );
}

const seat = (name: RegExp) => screen.getByRole("checkbox", { name });

test("every seat is a labelled checkbox whose state is in its name, not only its colour", () => {
  render(<Harness />);
  expect(seat(/row A, seat 1, free/)).toHaveAttribute("aria-checked", "false");
  expect(seat(/row A, seat 2, held/)).toHaveAttribute("aria-disabled", "true");
  expect(seat(/row A, seat 3, sold/)).toHaveAttribute("aria-disabled", "true");
  // Sold seats carry a cross, held ones a hatched fill: shapes, not just colours.
  expect(seat(/seat 3, sold/).querySelector("path")).not.toBeNull();
  expect(screen.getByRole("list", { name: "Seat states" })).toHaveTextContent(/Held by someone/);
});

test("a click chooses a free seat and a second click gives it back; taken seats cannot be chosen", async () => {
  const user = userEvent.setup();
  render(<Harness />);
  await user.click(seat(/row A, seat 1, free/));
  expect(seat(/row A, seat 1, chosen/)).toHaveAttribute("aria-checked", "true");
  await user.click(seat(/row A, seat 2, held/));
  await user.click(seat(/row A, seat 3, sold/));
  expect(seat(/row A, seat 2, held/)).toHaveAttribute("aria-checked", "false");
  expect(seat(/row A, seat 3, sold/)).toHaveAttribute("aria-checked", "false");
  await user.click(seat(/row A, seat 1, chosen/));
  expect(seat(/row A, seat 1, free/)).toHaveAttribute("aria-checked", "false");
});

test("one tab stop, arrow keys move, Space and Enter choose", async () => {
  const user = userEvent.setup();
  render(<Harness />);
  await user.tab();
  expect(seat(/row A, seat 1/)).toHaveFocus();
  expect(screen.getAllByRole("checkbox").filter((c) => c.getAttribute("tabindex") === "0")).toHaveLength(1);
  await user.keyboard("{ArrowRight}{ArrowRight}{ArrowRight}");
  expect(seat(/row A, seat 4/)).toHaveFocus();
  await user.keyboard(" ");
  expect(seat(/row A, seat 4, chosen/)).toBeInTheDocument();
  await user.keyboard("{ArrowDown}");
  expect(seat(/row B, seat 2/)).toHaveFocus();
  await user.keyboard("{Enter}{Home}");
  expect(seat(/row B, seat 2, chosen/)).toBeInTheDocument();
  expect(seat(/row B, seat 1/)).toHaveFocus();
  await user.keyboard("{ArrowUp}{ArrowRight} ");
  // Seat A-2 is held: focus may rest there, but it cannot be chosen.
  expect(seat(/row A, seat 2, held/)).toHaveFocus();
  expect(seat(/row A, seat 2, held/)).toHaveAttribute("aria-checked", "false");
});

test("a seat that becomes sold while shown turns unavailable", () => {
  const { rerender } = render(<Harness />);
  expect(seat(/row B, seat 1, free/)).toBeInTheDocument();
  const next = structuredClone(seats);
  next.sections[0]!.rows[1]!.seats[0]!.status = "sold";
  rerender(<Harness data={next} />);
  expect(seat(/row B, seat 1, sold/)).toHaveAttribute("aria-disabled", "true");
});
