/**
 * QR decoding for the door's camera, with ZXing's maintained JavaScript port (`@zxing/library`):
 * plain JavaScript, so the page's CSP needs no `wasm-unsafe-eval`, and only the QR reader is
 * imported, so the check-in chunk stays small. Loaded lazily when the camera starts.
 */
// Deep imports: the package's index pulls in every format and the writers, four times the size.
import BinaryBitmap from "@zxing/library/es2015/core/BinaryBitmap";
import HybridBinarizer from "@zxing/library/es2015/core/common/HybridBinarizer";
import DecodeHintType from "@zxing/library/es2015/core/DecodeHintType";
import Exception from "@zxing/library/es2015/core/Exception";
import QRCodeReader from "@zxing/library/es2015/core/qrcode/QRCodeReader";
import RGBLuminanceSource from "@zxing/library/es2015/core/RGBLuminanceSource";

const reader = new QRCodeReader();
// Ticket codes are short ASCII; TRY_HARDER makes ZXing look harder for a finder pattern in a
// blurry or tilted frame, which is what a phone camera at a door gives.
const hints = new Map<DecodeHintType, unknown>([[DecodeHintType.TRY_HARDER, true]]);

/**
 * The text of the QR code in an RGBA image (a canvas's `ImageData`), or null when the frame
 * holds none (or one ZXing cannot read yet: the next frame may be sharper).
 */
export function decodeQr(rgba: Uint8ClampedArray, width: number, height: number): string | null {
  // ZXing reads luminance; the usual weights, in integers (green counts most, as in ZXing's own
  // RGB conversion).
  const lum = new Uint8ClampedArray(width * height);
  for (let i = 0, p = 0; i < lum.length; i++, p += 4) {
    lum[i] = (rgba[p]! * 77 + rgba[p + 1]! * 150 + rgba[p + 2]! * 29) >> 8;
  }
  const bitmap = new BinaryBitmap(new HybridBinarizer(new RGBLuminanceSource(lum, width, height)));
  try {
    return reader.decode(bitmap, hints).getText();
  } catch (e) {
    // ZXing's own exceptions (not found, checksum, format, and the odd index error on a garbled
    // frame) all mean "no readable code in this frame"; anything else is a bug.
    if (e instanceof Exception) return null;
    throw e;
  } finally {
    reader.reset();
  }
}
