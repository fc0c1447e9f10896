import { render, screen } from "@testing-library/react";
import { ApiError, toApiError } from "../api/problem";
import { Field, ProblemAlert } from "./ui";

test("a problem document becomes an ApiError with its detail and field errors", () => {
  const e = toApiError(422, {
    type: "/problems/validation_failed", title: "Validation failed", status: 422, code: "validation_failed",
    detail: "some fields are invalid", errors: { email: "is not a valid address", password: "is too short" },
  });
  expect(e.code).toBe("validation_failed");
  expect(e.detail).toBe("some fields are invalid");
  expect(e.field("email")).toBe("is not a valid address");
  expect(toApiError(503, undefined).detail).toMatch(/try again/);
});

test("the alert shows the detail and only the field errors no field shows", () => {
  const e = new ApiError(422, "validation_failed", "some fields are invalid", { email: "is taken", capacity: "must be at least 1" });
  render(<ProblemAlert error={e} shownFields={["email"]} />);
  const alert = screen.getByRole("alert");
  expect(alert).toHaveTextContent("some fields are invalid");
  expect(alert).toHaveTextContent("capacity must be at least 1");
  expect(alert).not.toHaveTextContent("is taken");
});

test("a field shows its error next to it and is described by it", () => {
  render(<Field label="E-mail" error="is not a valid address" value="" onChange={() => undefined} />);
  const input = screen.getByLabelText("E-mail");
  expect(input).toHaveAttribute("aria-invalid", "true");
  expect(input).toHaveAccessibleDescription("is not a valid address");
});

test("a network failure reads as a sentence", () => {
  render(<ProblemAlert error={new TypeError("Failed to fetch")} />);
  expect(screen.getByRole("alert")).toHaveTextContent(/cannot be reached/);
});
