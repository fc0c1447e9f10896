/** How many general-admission tickets: a number with − and +, bounded by 1 and `max`. */
import { useId } from "react";

export function QuantityPicker({ value, max, onChange }: { value: number; max: number; onChange: (n: number) => void }) {
  const id = useId();
  const clamp = (n: number) => Math.max(1, Math.min(max, Number.isFinite(n) ? Math.trunc(n) : 1));
  return (
    <div className="field quantity">
      <label htmlFor={id}>Tickets</label>
      <div className="quantity-row">
        <button type="button" className="btn btn-square" aria-label="One ticket fewer" onClick={() => onChange(clamp(value - 1))}
          disabled={value <= 1}>
          −
        </button>
        <input id={id} type="number" inputMode="numeric" min={1} max={max} value={value}
          aria-describedby={`${id}-max`} onChange={(e) => onChange(clamp(Number(e.target.value)))} />
        <button type="button" className="btn btn-square" aria-label="One ticket more" onClick={() => onChange(clamp(value + 1))}
          disabled={value >= max}>
          +
        </button>
      </div>
      <p className="hint" id={`${id}-max`}>
        Up to {max} per booking.
      </p>
    </div>
  );
}
