import QRCode from "qrcode";
import { decodeQr } from "./qr";

/** An RGBA image of `text`'s QR code as the ticket page draws it, with `scale` pixels a module. */
function qrImage(text: string, scale: number, quiet = 4, { dark = [0, 0, 0], light = [255, 255, 255] } = {}) {
  const { modules } = QRCode.create(text, { errorCorrectionLevel: "M" });
  const side = (modules.size + 2 * quiet) * scale;
  const rgba = new Uint8ClampedArray(side * side * 4);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const r = Math.floor(y / scale) - quiet;
      const c = Math.floor(x / scale) - quiet;
      const on = r >= 0 && c >= 0 && r < modules.size && c < modules.size && modules.get(r, c) === 1;
      rgba.set([...(on ? dark : light), 255], (y * side + x) * 4);
    }
  }
  return { rgba, side };
}

test("reads a ticket code from its QR code", () => {
  const { rgba, side } = qrImage("K7QX-M2PD", 6);
  expect(decodeQr(rgba, side, side)).toBe("K7QX-M2PD");
});

test("reads a small, low-contrast code in a larger frame, as a camera sees it", () => {
  const { rgba: code, side } = qrImage("ABCD-EFGH", 3, 2, { dark: [70, 60, 60], light: [200, 205, 190] });
  const w = 320;
  const h = 240;
  const frame = new Uint8ClampedArray(w * h * 4).fill(128);
  for (let y = 0; y < side; y++) frame.set(code.subarray(y * side * 4, (y + 1) * side * 4), ((y + 40) * w + 100) * 4);
  expect(decodeQr(frame, w, h)).toBe("ABCD-EFGH");
});

test("a frame without a QR code gives null, not an exception", () => {
  const w = 64;
  const h = 48;
  expect(decodeQr(new Uint8ClampedArray(w * h * 4).fill(255), w, h)).toBeNull();
  const noise = new Uint8ClampedArray(w * h * 4).map((_, i) => (i * 2654435761) >>> 24);
  expect(decodeQr(noise, w, h)).toBeNull();
});
