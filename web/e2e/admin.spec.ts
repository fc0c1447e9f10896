/**
 * Scenario 5: an organiser builds a seated event, a buyer books a seat, the sales page shows it
 * live and in the figures counted from the event stream, the door admits the ticket once, and
 * the figures count the check-in.
 */
import { ADMIN_EMAIL, ADMIN_PASSWORD, Api, PASSWORD, expect, loginUI, seat, test, watch } from "./fixtures";

test("5. layout builder, a booking, and check-in at the door: admitted once, refused the second time", async ({ page, browser, baseURL, allow }) => {
  // The form's first submit is refused field by field (422); the second scan is refused (409).
  allow(/422|409|Unprocessable|Conflict/);
  await loginUI(page, ADMIN_EMAIL, ADMIN_PASSWORD, "/admin");
  await page.getByRole("link", { name: "New event" }).click();
  await page.getByLabel("Reserved seating").check();
  await page.getByRole("button", { name: "Create event" }).click();
  await expect(page.locator(".field-invalid").filter({ hasText: "Title" }).locator(".field-error")).toBeVisible();
  await expect(page.getByLabel("Title")).toHaveAttribute("aria-invalid", "true");

  const title = `Builder Premiere ${Date.now()}`;
  await page.getByLabel("Title").fill(title);
  await page.getByLabel("Description").fill("Built in the layout builder.");
  await page.getByLabel("Venue").fill("Grand Hall");
  await page.getByLabel("Starts at").fill("2031-05-01T20:00");
  await page.getByLabel("Price", { exact: true }).fill("42.50");
  await page.getByLabel("Section 1 name").fill("Circle");
  await page.getByRole("button", { name: "Add a row to Circle" }).click();
  await page.getByLabel("Section Circle row D seats").fill("4");
  await page.getByRole("button", { name: "Add a section" }).click();
  await page.getByLabel("Section 2 name").fill("Balcony");
  await expect(page.getByText("Preview (44 seats)")).toBeVisible();
  await expect(page.getByLabel("Preview of the seat map").getByRole("checkbox", { name: /Balcony, row A, seat 10/ })).toBeVisible();
  await page.getByRole("button", { name: "Create event" }).click();
  await expect(page.getByRole("heading", { name: title })).toBeVisible();
  const eventId = page.url().split("/").pop()!;
  await expect(page.getByText("Live", { exact: true })).toBeVisible();

  // A buyer books a seat in it.
  const api = await Api.at(baseURL!);
  const buyer = await api.user("fan");
  const ctx = await browser.newContext({ baseURL: baseURL! });
  const w = watch(ctx);
  const b = await ctx.newPage();
  await loginUI(b, buyer.email, PASSWORD, `/events/${eventId}`);
  await seat(b, /Circle, row D, seat 2, free/).click();
  await b.getByRole("button", { name: "Hold 1 seat" }).click();
  await b.getByRole("button", { name: /^Pay / }).click();
  await expect(b.getByText("Payment received: your booking is confirmed.")).toBeVisible();
  const code = (await b.getByLabel("Ticket code").textContent())!.trim();
  await ctx.close();
  expect(w.problems).toEqual([]);

  // The sales page shows it live.
  await expect(page.locator(".stats-live .stat").filter({ hasText: "Sold" }).locator("dd")).toHaveText("1");
  await expect(page.locator(".stats-live .stat").filter({ hasText: "Revenue" }).locator("dd")).toHaveText("$42.50");
  // And in the figures the worker's analytics counted from the domain events: one hold, paid.
  const figures = page.getByRole("region", { name: "Sales figures" });
  const figure = (label: string) => figures.locator(".stat").filter({ hasText: label }).locator("dd");
  await expect(figure("Tickets sold")).toHaveText("1");
  await expect(figure("Revenue")).toHaveText("$42.50");
  await expect(figure("Holds")).toHaveText("1");
  await expect(figure("Hold to paid")).toHaveText("100%");
  await expect(figure("Checked in")).toHaveText("0");
  await expect(figures.getByRole("img", { name: /over 1 hour: 1 ticket, \$42\.50/ })).toBeVisible();
  await expect(figures.getByTestId("sold-bar")).toHaveCount(1);
  await figures.getByText("The figures per hour as a table").click();
  await expect(figures.getByRole("table").getByRole("row")).toHaveCount(2);
  await expect(figures.getByRole("table")).toContainText("$42.50");

  await page.goto(`/admin/events/${eventId}/check-in`);
  await expect(page.getByText(title)).toBeVisible();
  await page.getByLabel("Ticket code").fill(code);
  await page.getByRole("button", { name: "Check in" }).click();
  await expect(page.getByText("Admitted")).toBeVisible();
  await expect(page.getByText(`Ticket ${code}: seats Circle-D-2.`)).toBeVisible();
  await page.getByLabel("Ticket code").fill(code.toLowerCase());
  await page.getByRole("button", { name: "Check in" }).click();
  await expect(page.getByText("Refused: already checked in")).toBeVisible();
  await expect(page.getByText("Admitted")).toHaveCount(0);

  // The admission reaches the figures once, however often the ticket was scanned.
  await page.goto(`/admin/events/${eventId}`);
  await expect(page.getByRole("region", { name: "Sales figures" }).locator(".stat").filter({ hasText: "Checked in" }).locator("dd")).toHaveText("1");
});
