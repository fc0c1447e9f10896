import { readEventStream } from "./sse";

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      chunks.forEach((x) => c.enqueue(enc.encode(x)));
      c.close();
    },
  });
}

test("events split across chunks are put back together; comments and keep-alives are ignored", async () => {
  const got: [string, string][] = [];
  await readEventStream(
    streamOf(['event: status\ndata: {"status":"he', 'ld"}\n\n:\n\n', "event: status\r\ndata: {\"status\":\"confirmed\"}\r\n\r\n"]),
    (name, data) => got.push([name, data]),
  );
  expect(got).toEqual([
    ["status", '{"status":"held"}'],
    ["status", '{"status":"confirmed"}'],
  ]);
});
