/**
 * Scenario 5b: the door scans a real ticket with the camera. Chromium's fake camera plays a
 * Y4M video, written here at test time, that shows the QR code of a ticket bought in this test;
 * the page decodes it from the camera stream: admitted once, refused when scanned again.
 */
import { chromium } from "@playwright/test";
import { writeFileSync } from "node:fs";
import QRCode from "qrcode";
import { ADMIN_EMAIL, ADMIN_PASSWORD, Api, expect, expectAccessible, loginUI, snap, test, watch } from "./fixtures";

/**
 * A YUV4MPEG2 (4:2:0) video of `frames` identical frames: `text`'s QR code, black on white,
 * centred in a grey frame, as a ticket held up to a door camera.
 */
function qrVideo(text: string, width = 640, height = 480, frames = 4): Buffer {
  const { modules } = QRCode.create(text, { errorCorrectionLevel: "M" });
  const scale = 8;
  const quiet = 3;
  const side = (modules.size + 2 * quiet) * scale;
  const left = Math.floor((width - side) / 2);
  const top = Math.floor((height - side) / 2);
  // Luma in video range (16 black, 235 white); grey around the ticket.
  const y = Buffer.alloc(width * height, 110);
  for (let row = 0; row < side; row++) {
    for (let col = 0; col < side; col++) {
      const r = Math.floor(row / scale) - quiet;
      const c = Math.floor(col / scale) - quiet;
      const dark = r >= 0 && c >= 0 && r < modules.size && c < modules.size && modules.get(r, c) === 1;
      y[(top + row) * width + left + col] = dark ? 16 : 235;
    }
  }
  const chroma = Buffer.alloc((width / 2) * (height / 2) * 2, 128); // no colour: U and V planes at 128
  const frame = Buffer.concat([Buffer.from("FRAME\n"), y, chroma]);
  const header = Buffer.from(`YUV4MPEG2 W${width} H${height} F10:1 Ip A1:1 C420jpeg\n`);
  return Buffer.concat([header, ...Array.from({ length: frames }, () => frame)]);
}

test("5b. the door scans a ticket's QR code with the camera: admitted once, refused the second time", async ({ baseURL, launchOptions }, info) => {
  const api = await Api.at(baseURL!);
  const event = await api.gaEvent(`Camera Night ${Date.now()}`, 10);
  const buyer = await api.user("door");
  const ticket = await api.confirmed(buyer.token, event.id, { quantity: 2 });

  // The video goes into this test's output folder (test-results/, ignored by git).
  const video = info.outputPath("ticket.y4m");
  writeFileSync(video, qrVideo(ticket.ticket_code));
  const browser = await chromium.launch({
    ...launchOptions,
    args: [
      ...(launchOptions.args ?? []),
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      `--use-file-for-fake-video-capture=${video}`,
    ],
  });
  try {
    const ctx = await browser.newContext({ baseURL: baseURL!, viewport: { width: 1280, height: 800 } });
    const w = watch(ctx);
    w.allowed.push(/409|Conflict/); // the second scan is refused
    const page = await ctx.newPage();
    await loginUI(page, ADMIN_EMAIL, ADMIN_PASSWORD, `/admin/events/${event.id}/check-in`);
    await expect(page.getByRole("heading", { name: "Door check-in" })).toBeVisible();

    await page.getByRole("button", { name: "Scan with camera" }).click();
    await expect(page.getByText("Scanning: hold a ticket's QR code in front of the camera.")).toBeVisible();
    await expect(page.locator(".verdict-ok")).toContainText("Admitted");
    await expect(page.getByText(`Ticket ${ticket.ticket_code}: 2 people.`)).toBeVisible();
    // The ticket stays in view: the camera keeps running and the verdict stays.
    await expect(page.getByRole("button", { name: "Stop camera" })).toHaveAttribute("aria-pressed", "true");
    await expectAccessible(page, "check-in with the camera");
    await snap(page, "check-in-camera");

    // Scanned again (the camera restarted, the same ticket in front of it): clearly refused.
    await page.getByRole("button", { name: "Stop camera" }).click();
    await expect(page.locator("video")).toHaveCount(0);
    await page.getByRole("button", { name: "Scan with camera" }).click();
    await expect(page.locator(".verdict-refused")).toContainText("Refused: already checked in");
    await expect(page.locator(".verdict-refused")).toContainText(`Ticket ${ticket.ticket_code}:`);
    await expect(page.getByText("Admitted")).toHaveCount(0);

    // The engine agrees: checking the code in by hand is refused too.
    const admin = await api.admin();
    const again = await api.ctx.post(`/api/v1/events/${event.id}/check-in`, {
      headers: { authorization: `Bearer ${admin}` },
      data: { code: ticket.ticket_code },
    });
    expect(again.status()).toBe(409);
    await ctx.close();
    expect(w.problems, "console errors or failed requests").toEqual([]);
  } finally {
    await browser.close();
  }
});
