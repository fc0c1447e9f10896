import { act, render, screen } from "@testing-library/react";
import { Countdown, formatLeft, secondsLeft } from "./Countdown";

afterEach(() => vi.useRealTimers());

test("formats minutes and seconds and never goes below zero", () => {
  expect(formatLeft(600)).toBe("10:00");
  expect(formatLeft(61)).toBe("1:01");
  expect(formatLeft(9)).toBe("0:09");
  const now = Date.parse("2030-01-01T00:00:00Z");
  expect(secondsLeft("2030-01-01T00:00:05Z", now)).toBe(5);
  expect(secondsLeft("2029-12-31T23:59:00Z", now)).toBe(0);
});

test("ticks down to the expiry, then says so and calls onExpire once", () => {
  vi.useFakeTimers();
  vi.setSystemTime(new Date("2030-01-01T00:00:00Z"));
  const onExpire = vi.fn();
  render(<Countdown expiresAt="2030-01-01T00:01:03Z" onExpire={onExpire} />);
  expect(screen.getByRole("timer")).toHaveTextContent("1:03 left to pay");
  act(() => vi.advanceTimersByTime(4000));
  expect(screen.getByRole("timer")).toHaveTextContent("0:59 left to pay");
  expect(screen.getByRole("timer")).toHaveClass("countdown-urgent");
  expect(onExpire).not.toHaveBeenCalled();
  act(() => vi.advanceTimersByTime(60_000));
  expect(screen.getByRole("timer")).toHaveTextContent(/Time is up/);
  act(() => vi.advanceTimersByTime(5000));
  expect(onExpire).toHaveBeenCalledTimes(1);
});
