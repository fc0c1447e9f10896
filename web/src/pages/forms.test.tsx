import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { MemoryRouter } from "react-router";
import { ApiError } from "../api/problem";
import { AuthForm } from "./AuthPages";
import { EventFormBody, previewOf, rowLabel } from "../admin/EventForm";

test("the sign-up form sends what was typed and shows the API's errors next to the fields", async () => {
  const user = userEvent.setup();
  const submit = vi.fn().mockRejectedValue(
    new ApiError(422, "validation_failed", "some fields are invalid", { password: "must be at least 8 characters" }),
  );
  const done = vi.fn();
  render(<AuthForm mode="register" submit={submit} onDone={done} />);
  await user.type(screen.getByLabelText("E-mail"), " ann@example.com ");
  await user.type(screen.getByLabelText("Password"), "short");
  await user.click(screen.getByRole("button", { name: "Create account" }));
  expect(submit).toHaveBeenCalledWith("ann@example.com", "short");
  expect(await screen.findByText("must be at least 8 characters")).toBeInTheDocument();
  expect(screen.getByLabelText("Password")).toHaveAttribute("aria-invalid", "true");
  expect(screen.getByLabelText("E-mail")).not.toHaveAttribute("aria-invalid");
  expect(screen.getByRole("alert")).toHaveTextContent("some fields are invalid");
  expect(done).not.toHaveBeenCalled();
});

test("the login form calls onDone after a success", async () => {
  const user = userEvent.setup();
  const done = vi.fn();
  render(<AuthForm mode="login" submit={vi.fn().mockResolvedValue(undefined)} onDone={done} />);
  await user.type(screen.getByLabelText("E-mail"), "ann@example.com");
  await user.type(screen.getByLabelText("Password"), "correct horse");
  await user.click(screen.getByRole("button", { name: "Log in" }));
  expect(done).toHaveBeenCalledTimes(1);
});

test("row labels run A..Z, then AA; the preview has one free seat per place", () => {
  expect([0, 1, 25, 26, 27].map(rowLabel)).toEqual(["A", "B", "Z", "AA", "AB"]);
  const p = previewOf([{ name: "Stalls", rows: [{ label: "A", seats: 3 }, { label: "B", seats: 2 }] }]);
  expect(p.sections[0]!.rows.map((r) => r.seats.map((s) => s.id))).toEqual([
    ["Stalls-A-1", "Stalls-A-2", "Stalls-A-3"],
    ["Stalls-B-1", "Stalls-B-2"],
  ]);
});

test("the event form's layout builder adds rows and sections and previews them", async () => {
  const user = userEvent.setup();
  render(
    <QueryClientProvider client={new QueryClient()}>
      <MemoryRouter>
        <EventFormBody />
      </MemoryRouter>
    </QueryClientProvider>,
  );
  await user.click(screen.getByLabelText("Reserved seating"));
  const preview = screen.getByLabelText("Preview of the seat map");
  expect(within(preview).getAllByRole("checkbox")).toHaveLength(30);
  await user.click(screen.getByRole("button", { name: "Add a row to Stalls" }));
  await user.click(screen.getByRole("button", { name: "Add a section" }));
  await waitFor(() => expect(within(preview).getAllByRole("checkbox")).toHaveLength(50), { timeout: 10_000 });
  expect(screen.getByText("Preview (50 seats)")).toBeInTheDocument();
});
