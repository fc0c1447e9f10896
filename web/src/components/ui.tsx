/** Small shared pieces: form fields with their error, the problem display, skeletons, the live badge. */
import { useId, type InputHTMLAttributes, type ReactNode, type Ref } from "react";
import { ApiError, messageOf } from "../api/problem";

type FieldProps = InputHTMLAttributes<HTMLInputElement> & {
  label: string;
  error?: string | undefined;
  hint?: string | undefined;
  ref?: Ref<HTMLInputElement>;
};

/** A labelled input; its error (from the API's `errors`) is shown beside it and announced. */
export function Field({ label, error, hint, id, ...input }: FieldProps) {
  const auto = useId();
  const fieldId = id ?? auto;
  const describedBy = [error ? `${fieldId}-error` : null, hint ? `${fieldId}-hint` : null].filter(Boolean).join(" ");
  return (
    <div className={error ? "field field-invalid" : "field"}>
      <label htmlFor={fieldId}>{label}</label>
      <input id={fieldId} aria-invalid={error ? true : undefined} aria-describedby={describedBy || undefined} {...input} />
      {hint && (
        <p className="hint" id={`${fieldId}-hint`}>
          {hint}
        </p>
      )}
      {error && (
        <p className="field-error" id={`${fieldId}-error`}>
          {error}
        </p>
      )}
    </div>
  );
}

/**
 * The problem of a failed call: its `detail`, plus the field errors that no field on the page
 * shows (those listed in `shownFields` appear next to their inputs instead).
 */
export function ProblemAlert({ error, shownFields = [] }: { error: unknown; shownFields?: string[] }) {
  if (!error) return null;
  const rest =
    error instanceof ApiError ? Object.entries(error.errors).filter(([k]) => !shownFields.includes(k)) : [];
  return (
    <div className="alert alert-error" role="alert">
      <p>{messageOf(error)}</p>
      {rest.length > 0 && (
        <ul>
          {rest.map(([k, v]) => (
            <li key={k}>
              <strong>{k.replace(/_/g, " ")}</strong> {v}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Skeleton({ lines = 3, className = "" }: { lines?: number; className?: string }) {
  return (
    <div className={`skeleton ${className}`} aria-hidden="true">
      {Array.from({ length: lines }, (_, i) => (
        <div key={i} className="skeleton-line" />
      ))}
    </div>
  );
}

export function Loading({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div role="status" aria-live="polite" aria-busy="true">
      <span className="visually-hidden">{label}</span>
      {children}
    </div>
  );
}

export function LiveBadge({ live }: { live: boolean }) {
  return (
    <span className={live ? "badge badge-live" : "badge badge-offline"}>
      <span className="dot" aria-hidden="true" />
      {live ? "Live" : "Reconnecting…"}
    </span>
  );
}
