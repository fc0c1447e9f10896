/**
 * Create or edit an event. General admission takes a capacity; reserved seating takes a layout
 * built here (sections of rows of seats) and previewed as the buyer will see it. The API's
 * validation errors appear next to their fields.
 */
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useId, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { api, unwrap, type Schemas, type SeatsView } from "../api/client";
import { ApiError } from "../api/problem";
import { Field, Loading, ProblemAlert, Skeleton } from "../components/ui";
import { SeatMap } from "../components/SeatMap";
import { useTitle } from "../components/Layout";

export type SectionDraft = { name: string; rows: { label: string; seats: number }[] };

/** Row labels A, B, ..., Z, AA, AB, ... */
export function rowLabel(i: number): string {
  let s = "";
  let n = i;
  do {
    s = String.fromCharCode(65 + (n % 26)) + s;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return s;
}

/** The seat map as the buyer will see it, every seat free. */
export function previewOf(sections: SectionDraft[]): SeatsView {
  return {
    seated: true,
    sections: sections.map((s) => ({
      name: s.name || "Section",
      rows: s.rows.map((r) => ({
        label: r.label,
        seats: Array.from({ length: Math.max(0, Math.min(r.seats, 200)) }, (_, i) => ({
          id: `${s.name}-${r.label}-${i + 1}`,
          number: i + 1,
          status: "free",
        })),
      })),
    })),
  };
}

/** A local `datetime-local` value from an RFC 3339 time, and back. */
function toLocalInput(iso: string): string {
  const d = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function toCents(price: string): number | undefined {
  const n = Number(price.replace(",", "."));
  return price.trim() === "" || !Number.isFinite(n) ? undefined : Math.round(n * 100);
}

export default function EventForm() {
  const { id } = useParams();
  const editing = !!id;
  useTitle(editing ? "Edit event" : "New event");
  const existing = useQuery({
    queryKey: ["event", id],
    enabled: editing,
    queryFn: () => unwrap(api.GET("/api/v1/events/{id}", { params: { path: { id: id! } } })),
  });
  if (editing && existing.isPending)
    return (
      <Loading label="Loading the event">
        <Skeleton lines={10} />
      </Loading>
    );
  if (editing && existing.isError) return <ProblemAlert error={existing.error} />;
  return <EventFormBody existing={existing.data} />;
}

export function EventFormBody({ existing }: { existing?: Schemas["EventView"] | undefined }) {
  const navigate = useNavigate();
  const qc = useQueryClient();
  const [title, setTitle] = useState(existing?.title ?? "");
  const [description, setDescription] = useState(existing?.description ?? "");
  const [venue, setVenue] = useState(existing?.venue ?? "");
  const [startsAt, setStartsAt] = useState(existing ? toLocalInput(existing.starts_at) : "");
  const [price, setPrice] = useState(existing ? (existing.price_cents / 100).toFixed(2) : "");
  const [currency, setCurrency] = useState(existing?.currency ?? "USD");
  const [maxPer, setMaxPer] = useState(String(existing?.max_per_booking ?? 10));
  const [maxUser, setMaxUser] = useState(existing ? String(existing.max_per_user) : "");
  const [seated, setSeated] = useState(existing?.seated ?? false);
  const [capacity, setCapacity] = useState(existing ? String(existing.capacity) : "100");
  const [sections, setSections] = useState<SectionDraft[]>([
    { name: "Stalls", rows: [0, 1, 2].map((i) => ({ label: rowLabel(i), seats: 10 })) },
  ]);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const err = (f: string) => (error instanceof ApiError ? error.field(f) : undefined);
  const descId = useId();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const common = {
      title,
      description,
      venue,
      starts_at: startsAt ? new Date(startsAt).toISOString() : undefined,
      price_cents: toCents(price),
      currency: currency.trim().toUpperCase(),
      max_per_booking: maxPer.trim() === "" ? undefined : Number(maxPer),
      max_per_user: maxUser.trim() === "" ? undefined : Number(maxUser),
    };
    try {
      const saved = existing
        ? await unwrap(
            api.PATCH("/api/v1/events/{id}", {
              params: { path: { id: existing.id } },
              body: { ...common, capacity: existing.seated ? undefined : Number(capacity) },
            }),
          )
        : await unwrap(
            api.POST("/api/v1/events", {
              body: seated
                ? { ...common, seat_map: { sections } }
                : { ...common, capacity: capacity.trim() === "" ? undefined : Number(capacity) },
            }),
          );
      qc.setQueryData(["event", saved.id], saved);
      void qc.invalidateQueries({ queryKey: ["events"] });
      navigate(`/admin/events/${saved.id}`);
    } catch (e2) {
      setError(e2);
    } finally {
      setBusy(false);
    }
  };

  const shown = ["title", "description", "venue", "starts_at", "price_cents", "currency", "max_per_booking", "max_per_user", "capacity", "seat_map"];

  return (
    <section>
      <p>
        <Link to="/admin">← All events</Link>
      </p>
      <h1>{existing ? `Edit ${existing.title}` : "New event"}</h1>
      <form className="form event-form" onSubmit={submit} noValidate aria-busy={busy}>
        <ProblemAlert error={error} shownFields={shown} />
        <Field label="Title" value={title} onChange={(e) => setTitle(e.target.value)} error={err("title")} required />
        <div className={err("description") ? "field field-invalid" : "field"}>
          <label htmlFor={descId}>Description</label>
          <textarea id={descId} rows={4} value={description} onChange={(e) => setDescription(e.target.value)}
            aria-invalid={err("description") ? true : undefined}
            aria-describedby={err("description") ? `${descId}-error` : undefined} />
          {err("description") && <p className="field-error" id={`${descId}-error`}>{err("description")}</p>}
        </div>
        <Field label="Venue" value={venue} onChange={(e) => setVenue(e.target.value)} error={err("venue")} required />
        <div className="grid-2">
          <Field label="Starts at" type="datetime-local" value={startsAt} onChange={(e) => setStartsAt(e.target.value)}
            error={err("starts_at")} required />
          <Field label="Price" inputMode="decimal" value={price} onChange={(e) => setPrice(e.target.value)}
            error={err("price_cents")} hint="e.g. 45.00" required />
          <Field label="Currency" value={currency} maxLength={3} onChange={(e) => setCurrency(e.target.value)}
            error={err("currency")} hint="Three letters, e.g. USD" />
          <Field label="Most places per booking" type="number" min={1} value={maxPer}
            onChange={(e) => setMaxPer(e.target.value)} error={err("max_per_booking")} />
          <Field label="Most places per account" type="number" min={1} value={maxUser}
            onChange={(e) => setMaxUser(e.target.value)} error={err("max_per_user")} hint="Empty: 20, or the capacity if smaller" />
        </div>
        {!existing && (
          <fieldset>
            <legend>Seating</legend>
            <div className="radio-row">
              <span className="choice">
                <input type="radio" id="kind-ga" name="kind" checked={!seated} onChange={() => setSeated(false)} />
                <label htmlFor="kind-ga">General admission</label>
              </span>
              <span className="choice">
                <input type="radio" id="kind-seated" name="kind" checked={seated} onChange={() => setSeated(true)} />
                <label htmlFor="kind-seated">Reserved seating</label>
              </span>
            </div>
          </fieldset>
        )}
        {!seated ? (
          <Field label="Capacity" type="number" min={1} value={capacity} onChange={(e) => setCapacity(e.target.value)}
            error={err("capacity")} required />
        ) : existing ? (
          <p className="hint">The seat map of an event cannot change once it is on sale.</p>
        ) : (
          <LayoutBuilder sections={sections} onChange={setSections} error={err("seat_map")} />
        )}
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? "Saving…" : existing ? "Save changes" : "Create event"}
        </button>
      </form>
    </section>
  );
}

export function LayoutBuilder({ sections, onChange, error }: { sections: SectionDraft[]; onChange: (s: SectionDraft[]) => void; error?: string | undefined }) {
  const update = (i: number, s: SectionDraft) => onChange(sections.map((x, j) => (j === i ? s : x)));
  const total = sections.reduce((n, s) => n + s.rows.reduce((m, r) => m + r.seats, 0), 0);
  return (
    <fieldset className="builder" aria-describedby={error ? "seat-map-error" : undefined}>
      <legend>Layout</legend>
      {error && (
        <p className="field-error" id="seat-map-error" role="alert">
          Seat map: {error}
        </p>
      )}
      {sections.map((s, i) => (
        <div className="builder-section panel" key={i}>
          <div className="builder-head">
            <Field label={`Section ${i + 1} name`} value={s.name} onChange={(e) => update(i, { ...s, name: e.target.value })} />
            {sections.length > 1 && (
              <button type="button" className="btn btn-quiet" onClick={() => onChange(sections.filter((_, j) => j !== i))}>
                Remove section {s.name || i + 1}
              </button>
            )}
          </div>
          <table className="table rows-table">
            <caption className="visually-hidden">Rows of section {s.name}</caption>
            <thead>
              <tr>
                <th scope="col">Row</th>
                <th scope="col">Seats</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {s.rows.map((r, ri) => (
                <tr key={ri}>
                  <td>
                    <input aria-label={`Section ${s.name} row ${ri + 1} label`} value={r.label} size={4}
                      onChange={(e) => update(i, { ...s, rows: s.rows.map((x, k) => (k === ri ? { ...x, label: e.target.value } : x)) })} />
                  </td>
                  <td>
                    <input aria-label={`Section ${s.name} row ${r.label} seats`} type="number" min={1} value={r.seats}
                      onChange={(e) => update(i, { ...s, rows: s.rows.map((x, k) => (k === ri ? { ...x, seats: Math.max(0, Math.trunc(Number(e.target.value)) || 0) } : x)) })} />
                  </td>
                  <td>
                    {s.rows.length > 1 && (
                      <button type="button" className="btn btn-quiet" aria-label={`Remove row ${r.label} of ${s.name}`}
                        onClick={() => update(i, { ...s, rows: s.rows.filter((_, k) => k !== ri) })}>
                        Remove
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <button type="button" className="btn" onClick={() => update(i, { ...s, rows: [...s.rows, { label: rowLabel(s.rows.length), seats: s.rows.at(-1)?.seats ?? 10 }] })}>
            Add a row to {s.name || `section ${i + 1}`}
          </button>
        </div>
      ))}
      <button type="button" className="btn" onClick={() => onChange([...sections, { name: `Section ${sections.length + 1}`, rows: [{ label: "A", seats: 10 }] }])}>
        Add a section
      </button>
      <h3>Preview ({total} seats)</h3>
      <PreviewMap sections={sections} />
    </fieldset>
  );
}

function PreviewMap({ sections }: { sections: SectionDraft[] }) {
  const [preview, setPreview] = useState(() => previewOf(sections));
  // Rebuild the preview a moment after typing stops, not on every key.
  useEffect(() => {
    const t = setTimeout(() => setPreview(previewOf(sections)), 150);
    return () => clearTimeout(t);
  }, [sections]);
  return (
    <div className="preview" aria-label="Preview of the seat map">
      <SeatMap seats={preview} selected={new Set()} onToggle={() => undefined} disabled />
    </div>
  );
}
