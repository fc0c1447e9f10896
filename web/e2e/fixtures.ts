/**
 * Shared pieces of the browser tests: a page that fails its test on any console error or failed
 * request (unless the test says it expects one), axe-core, screenshots at desktop and phone
 * width, and API shortcuts for setting the scene.
 */
import { test as base, expect, request as pwRequest, type APIRequestContext, type Page, type Locator, type BrowserContext } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";

export const BACKEND = process.env.BACKEND ?? "sqlite";
export const ADMIN_EMAIL = process.env.ADMIN_EMAIL ?? "admin@web.test";
export const ADMIN_PASSWORD = process.env.ADMIN_PASSWORD ?? "admin-password-123";
export const PASSWORD = "correct-horse-battery";
const SHOTS = process.env.SCREENSHOTS ?? "screenshots";

type Watch = { problems: string[]; allowed: RegExp[] };

/** Records console errors and failed requests of every page of a context. */
export function watch(context: BrowserContext): Watch {
  const w: Watch = { problems: [], allowed: [] };
  const ok = (text: string) => w.allowed.some((r) => r.test(text));
  const attach = (page: Page) => {
    page.on("console", (msg) => {
      if (msg.type() === "error" && !ok(msg.text())) w.problems.push(`console: ${msg.text()} (${page.url()})`);
    });
    page.on("pageerror", (err) => w.problems.push(`page error: ${err.message}`));
    page.on("requestfailed", (req) => {
      const why = req.failure()?.errorText ?? "";
      // Navigating away aborts open streams and fetches: that is not a failure.
      if (why.includes("ERR_ABORTED")) return;
      const text = `${req.method()} ${req.url()} ${why}`;
      if (!ok(text)) w.problems.push(`request failed: ${text}`);
    });
    page.on("response", (resp) => {
      if (resp.status() < 400) return;
      const text = `${resp.status()} ${resp.request().method()} ${resp.url()}`;
      if (!ok(text)) w.problems.push(`HTTP ${text}`);
    });
  };
  context.pages().forEach(attach);
  context.on("page", attach);
  return w;
}

export const test = base.extend<{ problems: Watch; allow: (r: RegExp) => void }>({
  problems: [
    async ({ context }, use) => {
      const w = watch(context);
      await use(w);
      expect(w.problems, "console errors or failed requests").toEqual([]);
    },
    { auto: true },
  ],
  allow: async ({ problems }, use) => {
    await use((r: RegExp) => {
      problems.allowed.push(r);
    });
  },
});
export { expect };

export async function expectAccessible(page: Page, what: string) {
  const result = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]).analyze();
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(
    bad.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`),
    `axe on ${what}`,
  ).toEqual([]);
}

/** Full-page screenshots at desktop width and at 360 px. */
export async function snap(page: Page, name: string) {
  const dir = `${SHOTS}/${BACKEND}`;
  mkdirSync(dir, { recursive: true });
  const size = page.viewportSize() ?? { width: 1280, height: 800 };
  await page.screenshot({ path: `${dir}/${name}-desktop.png`, fullPage: true, animations: "disabled" });
  await page.setViewportSize({ width: 360, height: 780 });
  await page.waitForTimeout(200);
  await page.screenshot({ path: `${dir}/${name}-phone.png`, fullPage: true, animations: "disabled" });
  await page.setViewportSize(size);
}

/** Presses Tab until `target` has focus (fails after `max` presses). */
export async function tabTo(page: Page, target: Locator, max = 80) {
  for (let i = 0; i < max; i++) {
    if (await target.evaluate((el) => el === document.activeElement).catch(() => false)) return;
    await page.keyboard.press("Tab");
  }
  throw new Error(`never reached ${target} with Tab`);
}

export function email(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}@example.com`;
}

/** The API, for setting the scene quickly. */
export class Api {
  constructor(readonly ctx: APIRequestContext) {}

  static async at(baseURL: string): Promise<Api> {
    return new Api(await pwRequest.newContext({ baseURL }));
  }

  async json<T = Record<string, unknown>>(method: string, path: string, token?: string, body?: unknown): Promise<T> {
    const resp = await this.ctx.fetch(`/api/v1${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), "idempotency-key": randomUUID() },
      data: body,
    });
    if (!resp.ok()) throw new Error(`${method} ${path}: ${resp.status()} ${await resp.text()}`);
    return (await resp.json()) as T;
  }

  async user(prefix = "buyer"): Promise<{ email: string; token: string }> {
    const e = email(prefix);
    await this.json("POST", "/auth/register", undefined, { email: e, password: PASSWORD });
    return { email: e, token: await this.token(e, PASSWORD) };
  }

  async token(e: string, password: string): Promise<string> {
    const r = await this.json<{ access_token: string }>("POST", "/auth/login", undefined, { email: e, password });
    return r.access_token;
  }

  async admin(): Promise<string> {
    return this.token(ADMIN_EMAIL, ADMIN_PASSWORD);
  }

  async seatedEvent(title: string, rows = 3, seats = 8): Promise<{ id: string }> {
    const admin = await this.admin();
    return this.json("POST", "/events", admin, {
      title,
      description: "A seated test event.",
      venue: "Test Hall",
      starts_at: new Date(Date.now() + 7 * 86400_000).toISOString(),
      price_cents: 3000,
      currency: "USD",
      max_per_booking: 6,
      seat_map: { sections: [{ name: "Stalls", rows: Array.from({ length: rows }, (_, i) => ({ label: String.fromCharCode(65 + i), seats })) }] },
    });
  }

  async gaEvent(title: string, capacity: number): Promise<{ id: string }> {
    const admin = await this.admin();
    return this.json("POST", "/events", admin, {
      title,
      description: "A general-admission test event.",
      venue: "Test Club",
      starts_at: new Date(Date.now() + 9 * 86400_000).toISOString(),
      price_cents: 1500,
      currency: "USD",
      capacity,
    });
  }

  async hold(token: string, event: string, body: unknown): Promise<{ id: string }> {
    return this.json("POST", `/events/${event}/bookings`, token, body);
  }

  async confirmed(token: string, event: string, body: unknown): Promise<{ id: string; ticket_code: string }> {
    const b = await this.hold(token, event, body);
    await this.json("POST", `/bookings/${b.id}/payments`, token, { method: "card", card_token: "tok_ok" });
    for (let i = 0; i < 100; i++) {
      const now = await this.json<{ status: string; ticket_code: string }>("GET", `/bookings/${b.id}`, token);
      if (now.status === "confirmed") return { id: b.id, ticket_code: now.ticket_code };
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error("booking never confirmed");
  }
}

/** Logs in through the login page and waits until the app shows the account. */
export async function loginUI(page: Page, e: string, password = PASSWORD, next = "/") {
  await page.goto(`/login?next=${encodeURIComponent(next)}`);
  await page.getByLabel("E-mail").fill(e);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByRole("button", { name: "Log out" })).toBeVisible();
}

export const seat = (page: Page, name: RegExp | string) => page.getByRole("checkbox", { name });
