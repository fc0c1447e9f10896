/**
 * A booking: while held, the checkout (countdown, card or mobile money); its status followed
 * live (pending payment → confirmed, or failed with the reason, or expired); once confirmed,
 * the ticket with its QR code and the receipt.
 */
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useState, type FormEvent } from "react";
import { Link, useParams } from "react-router";
import { api, unwrap, type BookingView, type PaymentView } from "../api/client";
import { ApiError } from "../api/problem";
import { session } from "../api/session";
import { Countdown } from "../components/Countdown";
import { Field, LiveBadge, Loading, ProblemAlert, Skeleton } from "../components/ui";
import { useTitle } from "../components/Layout";
import { money, newKey, when } from "../lib/format";
import { useBookingStatus } from "../lib/sse";

/** The simulated provider's test cards, by name. */
export const TEST_CARDS = [
  { token: "tok_ok", label: "Test card: payment succeeds" },
  { token: "tok_declined", label: "Test card: declined" },
  { token: "tok_slow", label: "Test card: slow approval" },
] as const;

const REASONS: Record<string, string> = {
  card_declined: "the card was declined",
  deadline_exceeded: "the payment provider did not answer in time",
  insufficient_funds: "there were not enough funds",
  payment_failed: "the payment failed",
};

export function reasonText(reason: string | null | undefined): string {
  if (!reason) return "the payment failed";
  return REASONS[reason] ?? reason.replace(/_/g, " ");
}

const paymentKey = (booking: string) => `boxoffice.payment.${booking}`;

export default function BookingPage() {
  const { id = "" } = useParams();
  const qc = useQueryClient();
  const booking = useQuery({
    queryKey: ["booking", id],
    queryFn: () => unwrap(api.GET("/api/v1/bookings/{id}", { params: { path: { id } } })),
  });
  const event = useQuery({
    queryKey: ["event", booking.data?.event_id],
    enabled: !!booking.data,
    queryFn: () =>
      unwrap(api.GET("/api/v1/events/{id}", { params: { path: { id: booking.data!.event_id } } })),
  });
  const [paymentId, setPaymentId] = useState<string | null>(() => sessionStorage.getItem(paymentKey(id)));
  const payment = useQuery({
    queryKey: ["payment", paymentId],
    enabled: !!paymentId,
    queryFn: () => unwrap(api.GET("/api/v1/payments/{id}", { params: { path: { id: paymentId! } } })),
    // While the provider decides, look now and then too (the booking stream says the outcome).
    refetchInterval: (q) => (q.state.data?.status === "pending" ? 2000 : false),
  });

  const onStatus = useCallback(
    (status: string) => {
      const current = qc.getQueryData<BookingView>(["booking", id]);
      if (current && current.status !== status) {
        qc.setQueryData<BookingView>(["booking", id], { ...current, status: status as BookingView["status"] });
      }
      // The ticket code and reason arrive with the full booking.
      if (!current || current.status !== status) void qc.invalidateQueries({ queryKey: ["booking", id] });
      if (status !== "held") void qc.invalidateQueries({ queryKey: ["payment"] });
    },
    [id, qc],
  );
  const live = useBookingStatus(id, onStatus);

  const b = booking.data;
  const title = !b ? "Booking" : b.status === "held" ? "Checkout" : b.status === "confirmed" ? "Your ticket" : "Booking";
  useTitle(title);

  if (booking.isPending)
    return (
      <Loading label="Loading your booking">
        <Skeleton lines={2} className="skeleton-title" />
        <Skeleton lines={8} />
      </Loading>
    );
  if (booking.isError || !b)
    return (
      <section>
        <h1>Booking unavailable</h1>
        <ProblemAlert error={booking.error} />
        <Link to="/bookings">My bookings</Link>
      </section>
    );

  return (
    <article className="booking-page">
      <header className="booking-head">
        <h1>{title}</h1>
        <LiveBadge live={live} />
      </header>
      <Summary booking={b} eventTitle={event.data?.title} startsAt={event.data?.starts_at} venue={event.data?.venue} />
      <div aria-live="polite" role="status" className="status-line">
        <StatusLine booking={b} payment={payment.data} />
      </div>
      {b.status === "held" && (
        <Checkout
          booking={b}
          payment={payment.data}
          onPaying={(p) => {
            sessionStorage.setItem(paymentKey(id), p.id);
            setPaymentId(p.id);
            qc.setQueryData(["payment", p.id], p);
          }}
        />
      )}
      {b.status === "confirmed" && <Ticket booking={b} />}
      {(b.status === "expired" || b.status === "cancelled") && (
        <div className="panel">
          <p>
            <Link to={`/events/${b.event_id}`} className="btn btn-primary">
              Try again
            </Link>{" "}
            <Link to="/bookings">My bookings</Link>
          </p>
        </div>
      )}
    </article>
  );
}

function Summary({ booking, eventTitle, startsAt, venue }: { booking: BookingView; eventTitle?: string | undefined; startsAt?: string | undefined; venue?: string | undefined }) {
  return (
    <dl className="summary panel">
      <div>
        <dt>Event</dt>
        <dd>{eventTitle ? <Link to={`/events/${booking.event_id}`}>{eventTitle}</Link> : <span className="skeleton-inline" />}</dd>
      </div>
      {startsAt && (
        <div>
          <dt>When</dt>
          <dd>
            {when(startsAt)}
            {venue ? `, ${venue}` : ""}
          </dd>
        </div>
      )}
      <div>
        <dt>{booking.seats.length ? "Seats" : "Tickets"}</dt>
        <dd>{booking.seats.length ? booking.seats.join(", ") : booking.quantity}</dd>
      </div>
      <div>
        <dt>Total</dt>
        <dd>{money(booking.amount_cents, booking.currency)}</dd>
      </div>
      <div>
        <dt>Status</dt>
        <dd>
          <span className={`pill pill-${booking.status}`}>{booking.status}</span>
        </dd>
      </div>
    </dl>
  );
}

function StatusLine({ booking, payment }: { booking: BookingView; payment: PaymentView | undefined }) {
  if (booking.status === "confirmed") return <p className="ok-text">Payment received: your booking is confirmed.</p>;
  if (booking.status === "expired")
    return <p className="bad-text">Your hold expired before it was paid, so the places were released.</p>;
  if (booking.status === "cancelled") {
    if (booking.cancel_reason === "payment_failed")
      return (
        <p className="bad-text">
          Payment failed: {reasonText(payment?.failure_reason)}. The places were released.
        </p>
      );
    return <p className="bad-text">This booking was cancelled{booking.cancel_reason === "admin" ? " by the organiser" : ""}.</p>;
  }
  if (payment?.status === "pending") return <p>Payment sent; waiting for the provider's answer…</p>;
  if (payment?.status === "failed") return <p className="bad-text">Payment failed: {reasonText(payment.failure_reason)}.</p>;
  return <p>Your places are held. Pay before the time runs out.</p>;
}

function Checkout({ booking, payment, onPaying }: { booking: BookingView; payment: PaymentView | undefined; onPaying: (p: PaymentView) => void }) {
  const [method, setMethod] = useState<"card" | "mobile_money">("card");
  const [card, setCard] = useState<string>(TEST_CARDS[0].token);
  const [phone, setPhone] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [expired, setExpired] = useState(false);
  const pending = payment?.status === "pending";

  const pay = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = method === "card" ? { method, card_token: card } : { method, phone_number: phone.trim() };
      const p = await unwrap(
        api.POST("/api/v1/bookings/{id}/payments", {
          params: { path: { id: booking.id }, header: { "Idempotency-Key": newKey() } },
          body,
        }),
      );
      onPaying(p);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const fieldError = (f: string) => (error instanceof ApiError ? error.field(f) : undefined);

  return (
    <section className="panel checkout" aria-labelledby="pay-h">
      <h2 id="pay-h">Payment</h2>
      {!pending && <Countdown expiresAt={booking.expires_at} onExpire={() => setExpired(true)} />}
      {expired && !pending && <p className="hint">Checking with the server…</p>}
      {pending ? (
        <p className="waiting">
          <span className="spinner" aria-hidden="true" /> Waiting for the payment provider…
        </p>
      ) : (
        <form onSubmit={pay} className="form" noValidate aria-busy={busy}>
          <fieldset>
            <legend>How do you want to pay?</legend>
            <div className="radio-row">
              <span className="choice">
                <input type="radio" id="m-card" name="method" checked={method === "card"} onChange={() => setMethod("card")} />
                <label htmlFor="m-card">Card</label>
              </span>
              <span className="choice">
                <input type="radio" id="m-mobile" name="method" checked={method === "mobile_money"} onChange={() => setMethod("mobile_money")} />
                <label htmlFor="m-mobile">Mobile money</label>
              </span>
            </div>
          </fieldset>
          {method === "card" ? (
            <fieldset>
              <legend>Card (simulated provider)</legend>
              {TEST_CARDS.map((c) => (
                <div className="radio-row" key={c.token}>
                  <input type="radio" id={`card-${c.token}`} name="card" value={c.token} checked={card === c.token}
                    onChange={() => setCard(c.token)} />
                  <label htmlFor={`card-${c.token}`}>{c.label}</label>
                </div>
              ))}
              {fieldError("card_token") && <p className="field-error">{fieldError("card_token")}</p>}
            </fieldset>
          ) : (
            <Field label="Phone number" type="tel" autoComplete="tel" placeholder="+254700000001" value={phone}
              onChange={(e) => setPhone(e.target.value)} error={fieldError("phone_number")}
              hint="International format, e.g. +254700000001." />
          )}
          <ProblemAlert error={error} shownFields={["phone_number", "card_token"]} />
          <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
            {busy ? "Sending…" : `Pay ${money(booking.amount_cents, booking.currency)}`}
          </button>
        </form>
      )}
      <CancelButton booking={booking} />
    </section>
  );
}

export function CancelButton({ booking, label = "Cancel this booking" }: { booking: BookingView; label?: string }) {
  const qc = useQueryClient();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const cancel = async () => {
    setBusy(true);
    setError(null);
    try {
      const b = await unwrap(api.POST("/api/v1/bookings/{id}/cancel", { params: { path: { id: booking.id } } }));
      qc.setQueryData(["booking", b.id], b);
      void qc.invalidateQueries({ queryKey: ["bookings"] });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="cancel">
      <button type="button" className="btn btn-danger-quiet" onClick={() => void cancel()} disabled={busy}>
        {busy ? "Cancelling…" : label}
      </button>
      <ProblemAlert error={error} />
    </div>
  );
}

function Ticket({ booking }: { booking: BookingView }) {
  const [qr, setQr] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [downloading, setDownloading] = useState(false);
  const code = booking.ticket_code;
  useEffect(() => {
    if (!code) return;
    let gone = false;
    void import("qrcode").then((QR) =>
      QR.toDataURL(code, { errorCorrectionLevel: "M", margin: 2, width: 240 }).then((url) => {
        if (!gone) setQr(url);
      }),
    );
    return () => {
      gone = true;
    };
  }, [code]);

  const download = async () => {
    setDownloading(true);
    setError(null);
    try {
      const token = session.get().token;
      const resp = await fetch(`/api/v1/bookings/${booking.id}/receipt.pdf`, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
      if (!resp.ok) throw new ApiError(resp.status, "receipt", "the receipt could not be downloaded; try again");
      const url = URL.createObjectURL(await resp.blob());
      const a = document.createElement("a");
      a.href = url;
      a.download = `receipt-${booking.id}.pdf`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      setError(err);
    } finally {
      setDownloading(false);
    }
  };

  return (
    <section className="panel ticket" aria-labelledby="ticket-h">
      <h2 id="ticket-h">Ticket</h2>
      {code ? (
        <div className="ticket-body">
          {qr ? (
            <img src={qr} width={240} height={240} alt={`QR code of ticket ${code}`} className="qr" />
          ) : (
            <div className="qr qr-placeholder" aria-hidden="true" />
          )}
          <div>
            <p className="hint">Show this code at the door.</p>
            <p className="ticket-code" aria-label="Ticket code">
              {code}
            </p>
            <div className="actions">
              <button type="button" className="btn btn-primary" onClick={() => void download()} disabled={downloading}>
                {downloading ? "Preparing…" : "Download receipt (PDF)"}
              </button>
              <Link to="/bookings" className="btn">
                In my bookings
              </Link>
            </div>
            <ProblemAlert error={error} />
          </div>
        </div>
      ) : (
        <Skeleton lines={4} />
      )}
      <CancelButton booking={booking} label="Cancel and refund" />
    </section>
  );
}
