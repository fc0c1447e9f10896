/** Reserved seating: scenario 2 (two buyers, one seat) and 3 (a hold expires while the page is open). */
import { Api, PASSWORD, expect, loginUI, seat, test, watch } from "./fixtures";

test("2. two buyers pick the same seat at once: one gets it, the other sees it taken, live", async ({ browser, baseURL, page, allow }) => {
  const api = await Api.at(baseURL!);
  const event = await api.seatedEvent("Seat Race Gala");
  const [ann, bob, cat] = [await api.user("ann"), await api.user("bob"), await api.user("cat")];
  const other = await browser.newContext({ baseURL: baseURL! });
  const otherWatch = watch(other);
  // The loser's hold is refused with 409: expected, and the only failure allowed.
  const conflict = /409|Conflict/;
  allow(conflict);
  otherWatch.allowed.push(conflict);
  const page2 = await other.newPage();

  await loginUI(page, ann.email, PASSWORD, `/events/${event.id}`);
  await loginUI(page2, bob.email, PASSWORD, `/events/${event.id}`);
  for (const p of [page, page2]) {
    await seat(p, /row B, seat 4, free/).click();
    await expect(seat(p, /row B, seat 4, chosen/)).toBeVisible();
  }
  // Both press "Hold" at once. The loser is told either way: by the server's 409 when their
  // request lands second, or live, when the winner's hold reaches their map before their press
  // does (the seat leaves their selection and the button with it, so that press never happens).
  const press = (p: typeof page) =>
    p.getByRole("button", { name: "Hold 1 seat" }).click({ timeout: 10_000 }).then(() => true, () => false);
  const pressed = await Promise.all([press(page), press(page2)]);
  expect(pressed.some(Boolean), "at least one buyer pressed Hold").toBe(true);
  const refused = /Someone else got there first|Seat Stalls-B-4 was just taken by someone else/;
  const won = async (p: typeof page) => {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (/\/bookings\//.test(p.url())) return true;
      if (await p.getByRole("alert").filter({ hasText: refused }).first().isVisible()) return false;
      await p.waitForTimeout(100);
    }
    throw new Error(`neither held nor refused: ${p.url()}`);
  };
  const results = await Promise.all([won(page), won(page2)]);
  expect(results.filter(Boolean)).toHaveLength(1);
  const loser = results[0] ? page2 : page;
  await expect(loser.getByRole("alert").filter({ hasText: refused }).first()).toBeVisible();
  await expect(seat(loser, /row B, seat 4, held/)).toBeVisible();
  await expect(loser).toHaveURL(new RegExp(`/events/${event.id}$`));

  // While the loser looks, a third buyer takes the seat they just chose: it turns unavailable
  // without a reload, and they are told.
  await seat(loser, /row C, seat 1, free/).click();
  await expect(seat(loser, /row C, seat 1, chosen/)).toBeVisible();
  await api.hold(cat.token, event.id, { seats: ["Stalls-C-1"] });
  await expect(seat(loser, /row C, seat 1, held/)).toBeVisible();
  await expect(loser.getByText("Seat Stalls-C-1 was just taken by someone else.")).toBeVisible();

  await other.close();
  expect(otherWatch.problems).toEqual([]);
});

test("3. a hold that expires while the checkout is open says so, and its seats come back on the map", async ({ browser }) => {
  const shortUrl = process.env.SHORT_URL;
  expect(shortUrl, "SHORT_URL: an engine with a short HOLD_TTL_SECS").toBeTruthy();
  const api = await Api.at(shortUrl!);
  const event = await api.seatedEvent("Short Hold Recital", 2, 6);
  const user = await api.user("eve");
  const ctx = await browser.newContext({ baseURL: shortUrl! });
  const w = watch(ctx);
  const page = await ctx.newPage();
  await loginUI(page, user.email, PASSWORD, `/events/${event.id}`);
  await seat(page, /row A, seat 2, free/).click();
  await seat(page, /row A, seat 3, free/).click();
  await page.getByRole("button", { name: "Hold 2 seats" }).click();
  await expect(page.getByRole("heading", { name: "Checkout" })).toBeVisible();
  await expect(page.getByRole("timer")).toBeVisible();
  await expect(page.getByText("Your hold expired before it was paid, so the places were released.")).toBeVisible({ timeout: 30_000 });
  await expect(page.getByText("expired", { exact: true })).toBeVisible();
  await page.getByRole("link", { name: "Try again" }).click();
  await expect(seat(page, /row A, seat 2, free/)).toBeVisible();
  await expect(seat(page, /row A, seat 3, free/)).toBeVisible();
  await ctx.close();
  expect(w.problems).toEqual([]);
});
