/**
 * Scenario 7: axe-core finds no serious or critical violation on any page (and each main page is
 * photographed at desktop and phone width); a general-admission ticket bought with the keyboard alone.
 */
import type { Page } from "@playwright/test";
import { ADMIN_EMAIL, ADMIN_PASSWORD, Api, PASSWORD, email, expect, expectAccessible, loginUI, snap, tabTo, test } from "./fixtures";

async function check(page: Page, url: string, ready: (p: Page) => Promise<void>, shot?: string) {
  await page.goto(url);
  await ready(page);
  await expectAccessible(page, url);
  if (shot) await snap(page, shot);
}

test("7a. every page passes axe-core (no serious or critical violations)", async ({ page, baseURL, allow }) => {
  test.setTimeout(300_000);
  allow(/404/); // the not-found page is visited on purpose
  const api = await Api.at(baseURL!);
  const title = `Axe Symphony ${Date.now() % 100_000}`;
  const seated = await api.seatedEvent(title, 4, 12);
  const user = await api.user("axe");
  // Some seats held and sold, so the map shows every state.
  const other = await api.user("other");
  await api.hold(other.token, seated.id, { seats: ["Stalls-A-5", "Stalls-A-6"] });
  await api.confirmed(other.token, seated.id, { seats: ["Stalls-B-7"] });
  const held = await api.hold(user.token, seated.id, { seats: ["Stalls-C-3", "Stalls-C-4"] });
  const events = await api.json<{ items: { id: string; title: string }[] }>("GET", "/events?q=Tech");
  const ga = events.items[0]!;
  const ticket = await api.confirmed(user.token, ga.id, { quantity: 1 });

  const h1 = (name: string | RegExp) => async (p: Page) => {
    await expect(p.getByRole("heading", { level: 1, name })).toBeVisible();
  };
  await check(page, "/", async (p) => { await expect(p.getByRole("link", { name: title })).toBeVisible(); }, "list");
  await check(page, "/login", h1("Log in"));
  await check(page, "/register", h1("Create an account"));
  await check(page, "/nowhere", h1("Page not found"));
  await check(page, `/events/${ga.id}`, async (p) => { await expect(p.getByRole("button", { name: "Log in to book" })).toBeVisible(); }, "event-ga");
  await check(page, `/events/${seated.id}`, async (p) => {
    await expect(p.getByRole("checkbox", { name: /row B, seat 7, sold/ })).toBeVisible();
    await expect(p.getByText("Live", { exact: true })).toBeVisible();
  }, "event-seatmap");

  await loginUI(page, user.email);
  await check(page, `/bookings/${held.id}`, async (p) => { await expect(p.getByRole("timer")).toBeVisible(); }, "checkout");
  await page.getByLabel("Mobile money").check();
  await page.getByLabel("Phone number").fill("12");
  allow(/422|Unprocessable/);
  await page.getByRole("button", { name: /^Pay / }).click();
  await expect(page.locator(".field-invalid").filter({ hasText: "Phone number" }).locator(".field-error")).toBeVisible();
  await expectAccessible(page, "checkout with a field error");
  await check(page, `/bookings/${ticket.id}`, async (p) => { await expect(p.getByRole("img", { name: /QR code/ })).toBeVisible(); }, "ticket");
  await check(page, "/bookings", h1("My bookings"), "my-bookings");

  await page.getByRole("button", { name: "Log out" }).click();
  await loginUI(page, ADMIN_EMAIL, ADMIN_PASSWORD);
  await check(page, "/admin", async (p) => { await expect(p.getByRole("link", { name: title })).toBeVisible(); }, "admin-overview");
  await check(page, `/admin/events/${seated.id}`, async (p) => {
    await expect(p.locator(".stats-live .stat").filter({ hasText: "Sold" }).locator("dd")).toHaveText("1");
  }, "admin-sales");
  await check(page, "/admin/events/new", h1("New event"));
  await page.getByLabel("Reserved seating").check();
  await expectAccessible(page, "the layout builder");
  await snap(page, "admin-new-event");
  await check(page, `/admin/events/${ga.id}/edit`, h1(/^Edit /));
  await check(page, "/admin/check-in", async (p) => { await expect(p.getByLabel("Which event's door?")).toBeVisible(); });
  await check(page, `/admin/events/${ga.id}/check-in`, async (p) => { await expect(p.getByText(ga.title)).toBeVisible(); });
  await page.getByLabel("Ticket code").fill(ticket.ticket_code);
  await page.getByRole("button", { name: "Check in" }).click();
  await expect(page.getByText("Admitted")).toBeVisible();
  await expectAccessible(page, "check-in verdict");
  await snap(page, "check-in");
});

test("7b. a general-admission ticket bought with the keyboard alone", async ({ page, baseURL }) => {
  const api = await Api.at(baseURL!);
  const event = await api.gaEvent(`Keyboard Jam ${Date.now()}`, 20);
  const me = email("kb");
  await api.json("POST", "/auth/register", undefined, { email: me, password: PASSWORD });

  await page.goto("/");
  await tabTo(page, page.getByRole("link", { name: "Log in" }));
  await page.keyboard.press("Enter");
  await tabTo(page, page.getByLabel("E-mail"));
  await page.keyboard.type(me);
  await page.keyboard.press("Tab");
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press("Enter");
  await expect(page.getByRole("button", { name: "Log out" })).toBeVisible();

  await tabTo(page, page.getByLabel("Search", { exact: true }));
  await page.keyboard.type("Keyboard Jam");
  await page.keyboard.press("Enter");
  const link = page.getByRole("link", { name: /Keyboard Jam/ });
  await expect(link).toBeVisible();
  await tabTo(page, link);
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(new RegExp(`/events/${event.id}`));
  await tabTo(page, page.getByRole("button", { name: "One ticket more" }));
  await page.keyboard.press("Enter");
  await page.keyboard.press("Enter");
  await tabTo(page, page.getByRole("button", { name: "Hold 3 tickets" }));
  await page.keyboard.press("Enter");
  await expect(page.getByRole("heading", { name: "Checkout" })).toBeVisible();
  await tabTo(page, page.getByRole("button", { name: /^Pay / }));
  await page.keyboard.press("Enter");
  await expect(page.getByText("Payment received: your booking is confirmed.")).toBeVisible();
  // Focus is always visible: the focused control has an outline.
  await tabTo(page, page.getByRole("button", { name: "Download receipt (PDF)" }));
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
  expect(outline).not.toBe("none");
});
