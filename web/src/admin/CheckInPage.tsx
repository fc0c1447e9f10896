/**
 * The door of one event: type a ticket code, or scan its QR code with the device camera (decoded
 * in the page with ZXing, see `qr.ts`). The first scan admits; a second scan of the same code, or
 * a ticket of another event, is clearly refused. Without an event in the address, the page asks
 * which door.
 */
import { useQuery } from "@tanstack/react-query";
import { useEffect, useId, useRef, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, unwrap, type Schemas } from "../api/client";
import { ApiError, messageOf } from "../api/problem";
import { Field, Loading, ProblemAlert, Skeleton } from "../components/ui";
import { useTitle } from "../components/Layout";
import { when } from "../lib/format";

type Result = { ok: true; code: string; admission: Schemas["Admission"] } | { ok: false; code: string; error: unknown };

export default function CheckInPage() {
  const { id } = useParams();
  return id ? <Door eventId={id} /> : <ChooseDoor />;
}

function ChooseDoor() {
  useTitle("Door check-in");
  const navigate = useNavigate();
  const selectId = useId();
  const events = useQuery({
    queryKey: ["events", "door"],
    queryFn: () => unwrap(api.GET("/api/v1/events", { params: { query: { limit: 100 } } })),
  });
  return (
    <section>
      <h1>Door check-in</h1>
      <ProblemAlert error={events.error} />
      {events.isPending ? (
        <Loading label="Loading events">
          <Skeleton lines={3} />
        </Loading>
      ) : (
        <div className="field checkin-form">
          <label htmlFor={selectId}>Which event's door?</label>
          <select id={selectId} defaultValue="" onChange={(e) => e.target.value && navigate(`/admin/events/${e.target.value}/check-in`)}>
            <option value="" disabled>
              Choose an event
            </option>
            {events.data?.items.map((e) => (
              <option key={e.id} value={e.id}>
                {e.title} · {when(e.starts_at)}
              </option>
            ))}
          </select>
        </div>
      )}
    </section>
  );
}

function Door({ eventId }: { eventId: string }) {
  const event = useQuery({
    queryKey: ["event", eventId],
    queryFn: () => unwrap(api.GET("/api/v1/events/{id}", { params: { path: { id: eventId } } })),
  });
  useTitle("Door check-in");
  const [code, setCode] = useState("");
  const [result, setResult] = useState<Result | null>(null);
  const [busy, setBusy] = useState(false);
  const [scanning, setScanning] = useState(false);
  const input = useRef<HTMLInputElement>(null);

  // `typed`: the code came from the field, so the cursor goes back there for the next one; a
  // scanned code leaves the focus alone (on a phone, focusing the field opens the keyboard).
  const check = async (raw: string, typed: boolean) => {
    const c = raw.trim();
    if (!c) return;
    setBusy(true);
    try {
      const admission = await unwrap(
        api.POST("/api/v1/events/{id}/check-in", { params: { path: { id: eventId } }, body: { code: c } }),
      );
      setResult({ ok: true, code: c, admission });
    } catch (error) {
      setResult({ ok: false, code: c, error });
    } finally {
      setBusy(false);
      setCode("");
      if (typed) input.current?.focus();
    }
  };

  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    void check(code, true);
  };

  return (
    <section>
      <h1>Door check-in</h1>
      <p className="hint door-about">
        {event.data ? (
          <>
            <strong>{event.data.title}</strong> · {when(event.data.starts_at)} · {event.data.venue} ·{" "}
            <Link to="/admin/check-in">another event</Link>
          </>
        ) : (
          <span className="skeleton-inline" />
        )}
      </p>
      {/* Phones: the form, the verdict, then the camera; wider screens: the camera beside them. */}
      <div className="door">
        <div className="door-desk">
          <form className="form checkin-form" onSubmit={onSubmit} noValidate>
            <Field ref={input} label="Ticket code" value={code} autoComplete="off" autoCapitalize="characters"
              onChange={(e) => setCode(e.target.value)}
              error={result && !result.ok && result.error instanceof ApiError ? result.error.field("code") : undefined} />
            <div className="actions">
              <button type="submit" className="btn btn-primary" disabled={busy || !code.trim()}>
                {busy ? "Checking…" : "Check in"}
              </button>
              <button type="button" className="btn" onClick={() => setScanning((s) => !s)} aria-pressed={scanning}>
                {scanning ? "Stop camera" : "Scan with camera"}
              </button>
            </div>
          </form>
          <div aria-live="assertive" role="status">
            {result && <Verdict result={result} />}
          </div>
        </div>
        {scanning && <Scanner paused={busy} onCode={(c) => void check(c, false)} />}
      </div>
    </section>
  );
}

function Verdict({ result }: { result: Result }) {
  if (result.ok) {
    const a = result.admission;
    return (
      <div className="verdict verdict-ok">
        <p className="verdict-title">
          <span aria-hidden="true">✔</span> Admitted
        </p>
        <p>
          Ticket {result.code}: {a.seats.length ? `seats ${a.seats.join(", ")}` : `${a.quantity} ${a.quantity === 1 ? "person" : "people"}`}.
        </p>
      </div>
    );
  }
  const e = result.error;
  const already = e instanceof ApiError && e.code === "already_checked_in";
  return (
    <div className="verdict verdict-refused">
      <p className="verdict-title">
        <span aria-hidden="true">✖</span> {already ? "Refused: already checked in" : "Refused"}
      </p>
      <p>
        Ticket {result.code}: {messageOf(e)}
      </p>
    </div>
  );
}

/** How often a camera frame is decoded, and how long a code must be out of view to count again. */
const SCAN_EVERY_MS = 120;
const REARM_AFTER_MS = 2000;
/** Frames are scaled down to this width before decoding: enough for a ticket held at the camera. */
const MAX_FRAME_WIDTH = 800;

/**
 * The camera, decoding a frame every SCAN_EVERY_MS; a code is sent unless a check is under way.
 * It keeps running between tickets; a code still in view after its check is not sent again, so
 * a ticket held up is checked once, and scanned again once it has left the view (or the camera
 * was restarted).
 */
function Scanner({ onCode, paused }: { onCode: (code: string) => void; paused: boolean }) {
  const video = useRef<HTMLVideoElement>(null);
  const [error, setError] = useState<string | null>(null);
  const [ready, setReady] = useState(false);
  const latest = useRef({ onCode, paused });
  latest.current = { onCode, paused };
  useEffect(() => {
    let stream: MediaStream | null = null;
    let timer = 0;
    let stopped = false;
    let last: { code: string; seen: number } | null = null;
    const canvas = document.createElement("canvas");
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    void (async () => {
      try {
        if (!navigator.mediaDevices?.getUserMedia) throw new Error("this browser offers no camera to this page");
        const [{ decodeQr }, media] = await Promise.all([
          import("./qr"),
          navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false }),
        ]);
        stream = media;
        // Unmounted while the camera was starting: let it go at once.
        if (stopped || !video.current) {
          media.getTracks().forEach((t) => t.stop());
          return;
        }
        video.current.srcObject = media;
        await video.current.play();
        setReady(true);
        const scan = () => {
          if (stopped) return;
          const v = video.current;
          if (v && ctx && v.videoWidth) {
            const scale = Math.min(1, MAX_FRAME_WIDTH / v.videoWidth);
            canvas.width = Math.round(v.videoWidth * scale);
            canvas.height = Math.round(v.videoHeight * scale);
            ctx.drawImage(v, 0, 0, canvas.width, canvas.height);
            const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
            const found = decodeQr(img.data, img.width, img.height)?.trim();
            const now = performance.now();
            // Frames are read while a check is under way too, so a ticket that stays in view
            // through a slow check still counts as the same scan afterwards.
            if (found && last?.code === found && now - last.seen < REARM_AFTER_MS) {
              last.seen = now;
            } else if (found && !latest.current.paused) {
              last = { code: found, seen: now };
              latest.current.onCode(found);
            }
          }
          timer = window.setTimeout(scan, SCAN_EVERY_MS);
        };
        scan();
      } catch (e) {
        if (stopped) return;
        setError(`The camera cannot be used: ${e instanceof Error ? e.message : String(e)}. Type the code instead.`);
      }
    })();
    return () => {
      stopped = true;
      clearTimeout(timer);
      stream?.getTracks().forEach((t) => t.stop());
    };
  }, []);
  return (
    <div className="scanner">
      {error ? (
        <p className="alert alert-error" role="alert">
          {error}
        </p>
      ) : (
        <>
          <video ref={video} muted playsInline aria-label="Camera view: hold the ticket's QR code in front of it" />
          <p className="hint" aria-live="polite">
            {ready ? "Scanning: hold a ticket's QR code in front of the camera." : "Starting the camera…"}
          </p>
        </>
      )}
    </div>
  );
}
