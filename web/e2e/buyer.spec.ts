/** The buyer's path: scenarios 1 (register, hold, pay, ticket, receipt), 4 (declined card) and 6 (reload mid-checkout). */
import { readFileSync } from "node:fs";
import { Api, PASSWORD, email, expect, loginUI, test } from "./fixtures";

test("1. a new visitor registers, holds 2 places for Rock Concert, pays, and gets the ticket and a PDF receipt", async ({ page }) => {
  const me = email("ann");
  await page.goto("/");
  await page.getByRole("link", { name: "Sign up" }).click();
  await page.getByLabel("E-mail").fill(me);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByText(me)).toBeVisible();

  await page.getByLabel("Search", { exact: true }).fill("rock");
  await page.getByRole("button", { name: "Search" }).click();
  await expect(page).toHaveURL(/q=rock/);
  await page.getByRole("link", { name: "Rock Concert" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Rock Concert" })).toBeVisible();
  await expect(page.getByText("Live", { exact: true })).toBeVisible();
  await page.getByRole("button", { name: "One ticket more" }).click();
  await page.getByRole("button", { name: "Hold 2 tickets" }).click();

  await expect(page.getByRole("heading", { name: "Checkout" })).toBeVisible();
  await expect(page.getByRole("timer")).toContainText("left to pay");
  await page.getByLabel("Test card: payment succeeds").check();
  await page.getByRole("button", { name: /^Pay / }).click();
  await expect(page.getByText("Payment received: your booking is confirmed.")).toBeVisible();
  await expect(page.getByRole("heading", { name: "Your ticket" })).toBeVisible();
  const code = (await page.getByLabel("Ticket code").textContent())?.trim() ?? "";
  expect(code.length).toBeGreaterThan(4);
  const qr = page.getByRole("img", { name: `QR code of ticket ${code}` });
  await expect(qr).toBeVisible();
  expect(await qr.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);

  const download = page.waitForEvent("download");
  await page.getByRole("button", { name: "Download receipt (PDF)" }).click();
  const file = await (await download).path();
  expect(readFileSync(file).subarray(0, 5).toString()).toBe("%PDF-");

  await page.getByRole("link", { name: "In my bookings" }).click();
  await expect(page.getByRole("link", { name: "Rock Concert" })).toBeVisible();
  await expect(page.getByText("confirmed", { exact: true })).toBeVisible();
});

test("4. the declined test card: the booking fails with the reason shown and the places come back", async ({ page, baseURL }) => {
  const api = await Api.at(baseURL!);
  const event = await api.gaEvent("Declined Card Night", 5);
  const user = await api.user("dee");
  await loginUI(page, user.email, PASSWORD, `/events/${event.id}`);
  await expect(page.locator(".pill", { hasText: "5 places left" })).toBeVisible();
  await page.getByRole("button", { name: "One ticket more" }).click();
  await page.getByRole("button", { name: "Hold 2 tickets" }).click();
  await expect(page.getByRole("heading", { name: "Checkout" })).toBeVisible();
  await page.getByLabel("Test card: declined").check();
  await page.getByRole("button", { name: /^Pay / }).click();
  await expect(page.getByText("Payment failed: the card was declined. The places were released.")).toBeVisible();
  await page.getByRole("link", { name: "Try again" }).click();
  await expect(page.locator(".pill", { hasText: "5 places left" })).toBeVisible();
});

test("6. a reload in the middle of checkout keeps the session and the hold", async ({ page, baseURL }) => {
  const api = await Api.at(baseURL!);
  const event = await api.gaEvent("Reload Festival", 10);
  const user = await api.user("ray");
  await loginUI(page, user.email, PASSWORD, `/events/${event.id}`);
  await page.getByRole("button", { name: "Hold 1 ticket" }).click();
  await expect(page.getByRole("heading", { name: "Checkout" })).toBeVisible();
  const url = page.url();
  const before = await page.getByRole("timer").textContent();

  await page.reload();
  await expect(page).toHaveURL(url);
  await expect(page.getByRole("heading", { name: "Checkout" })).toBeVisible();
  await expect(page.getByText(user.email)).toBeVisible();
  await expect(page.getByRole("timer")).toContainText("left to pay");
  expect(before).toMatch(/left to pay/);

  // A second reload too (the refresh cookie was rotated by the first), then pay.
  await page.reload();
  await expect(page.getByRole("heading", { name: "Checkout" })).toBeVisible();
  await page.getByRole("button", { name: /^Pay / }).click();
  await expect(page.getByText("Payment received: your booking is confirmed.")).toBeVisible();

  // Logging out ends it: a reload then asks to log in again.
  await page.getByRole("button", { name: "Log out" }).click();
  await page.goto(url);
  await expect(page).toHaveURL(/\/login\?next=/);
});
