/**
 * The seat map of a reserved-seating event as SVG: sections of rows of seats, each seat a
 * checkbox. States differ by shape and label, not only colour: free seats are outlined,
 * held ones hatched, sold ones crossed out, chosen ones filled with a tick. One tab stop for
 * the whole map; arrow keys move between seats, Space or Enter picks one.
 */
import { useMemo, useRef, useState, type KeyboardEvent } from "react";
import type { SeatsView } from "../api/client";

export type SeatStatus = "free" | "held" | "sold";
type Cell = { id: string; status: SeatStatus; number: number; section: string; row: string; r: number; c: number };

const SIZE = 26;
const GAP = 6;
const LABEL = 34;
const SECTION_GAP = 34;
/**
 * On a narrow screen the map shrinks to fit, down to this scale (seats 3/4 size, so their centres
 * stay at least 24 px apart, WCAG's target spacing); a wider map scrolls sideways beyond that.
 */
const MIN_SCALE = 0.75;

export function seatLabel(cell: { section: string; row: string; number: number }, state: string): string {
  return `${cell.section}, row ${cell.row}, seat ${cell.number}, ${state}`;
}

export function SeatMap({
  seats,
  selected,
  onToggle,
  disabled = false,
}: {
  seats: SeatsView;
  selected: ReadonlySet<string>;
  onToggle: (id: string) => void;
  disabled?: boolean;
}) {
  // Rows in reading order across sections, each with its cells.
  const { rows, width, height, titles } = useMemo(() => {
    const rows: Cell[][] = [];
    const titles: { name: string; y: number }[] = [];
    let y = 0;
    let widest = 0;
    for (const section of seats.sections) {
      titles.push({ name: section.name, y: y + 16 });
      y += 26;
      for (const row of section.rows) {
        const r = rows.length;
        rows.push(
          row.seats.map((s, c) => ({
            id: s.id,
            status: s.status as SeatStatus,
            number: s.number,
            section: section.name,
            row: row.label,
            r,
            c,
          })),
        );
        widest = Math.max(widest, row.seats.length);
        y += SIZE + GAP;
      }
      y += SECTION_GAP - GAP;
    }
    return { rows, width: LABEL + widest * (SIZE + GAP), height: Math.max(y - SECTION_GAP + GAP, SIZE), titles };
  }, [seats]);

  const rowTop = useMemo(() => {
    const tops: number[] = [];
    let y = 0;
    let r = 0;
    for (const section of seats.sections) {
      y += 26;
      for (let i = 0; i < section.rows.length; i++) {
        tops[r++] = y;
        y += SIZE + GAP;
      }
      y += SECTION_GAP - GAP;
    }
    return tops;
  }, [seats]);

  const firstFree = rows.flat().find((c) => c.status === "free") ?? rows[0]?.[0];
  const [focus, setFocus] = useState<{ r: number; c: number } | null>(null);
  const current = focus && rows[focus.r]?.[focus.c] ? focus : firstFree ? { r: firstFree.r, c: firstFree.c } : null;
  const refs = useRef(new Map<string, SVGGElement>());

  const move = (r: number, c: number) => {
    const row = rows[r];
    if (!row) return;
    const cell = row[Math.max(0, Math.min(c, row.length - 1))];
    if (!cell) return;
    setFocus({ r: cell.r, c: cell.c });
    refs.current.get(cell.id)?.focus();
  };

  const onKey = (e: KeyboardEvent, cell: Cell) => {
    const keys: Record<string, () => void> = {
      ArrowRight: () => move(cell.r, cell.c + 1),
      ArrowLeft: () => move(cell.r, cell.c - 1),
      ArrowDown: () => move(cell.r + 1, cell.c),
      ArrowUp: () => move(cell.r - 1, cell.c),
      Home: () => move(cell.r, 0),
      End: () => move(cell.r, Number.MAX_SAFE_INTEGER),
      " ": () => toggle(cell),
      Enter: () => toggle(cell),
    };
    const action = keys[e.key];
    if (action) {
      e.preventDefault();
      action();
    }
  };

  const toggle = (cell: Cell) => {
    if (disabled) return;
    if (cell.status !== "free" && !selected.has(cell.id)) return;
    onToggle(cell.id);
  };

  return (
    <div className="seatmap">
      <div className="seatmap-scroll">
        <svg
          className="seatmap-svg"
          viewBox={`0 0 ${width} ${height}`}
          width={width}
          height={height}
          style={{ maxWidth: width, minWidth: Math.ceil(width * MIN_SCALE) }}
          role="group"
          aria-label="Seat map: use the arrow keys to move between seats and Space to choose one"
        >
          <defs>
            <pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
              <rect width="6" height="6" className="hatch-bg" />
              <line x1="0" y1="0" x2="0" y2="6" className="hatch-line" />
            </pattern>
          </defs>
          {titles.map((t) => (
            <text key={t.name} x={0} y={t.y} className="seatmap-section">
              {t.name}
            </text>
          ))}
          {rows.map((row, r) => (
            <g key={r}>
              <text x={0} y={(rowTop[r] ?? 0) + SIZE * 0.68} className="seatmap-row" aria-hidden="true">
                {row[0]?.row}
              </text>
              {row.map((cell) => {
                const chosen = selected.has(cell.id);
                const state = chosen ? "chosen" : cell.status;
                const x = LABEL + cell.c * (SIZE + GAP);
                const y = rowTop[r] ?? 0;
                const isFocus = current?.r === cell.r && current?.c === cell.c;
                const unavailable = cell.status !== "free" && !chosen;
                return (
                  <g
                    key={cell.id}
                    ref={(el) => {
                      if (el) refs.current.set(cell.id, el);
                      else refs.current.delete(cell.id);
                    }}
                    className={`seat seat-${state}`}
                    role="checkbox"
                    aria-checked={chosen}
                    aria-disabled={unavailable || disabled ? true : undefined}
                    aria-label={seatLabel(cell, state === "chosen" ? "chosen" : cell.status)}
                    data-seat={cell.id}
                    data-state={state}
                    tabIndex={isFocus ? 0 : -1}
                    onClick={() => {
                      setFocus({ r: cell.r, c: cell.c });
                      toggle(cell);
                    }}
                    onKeyDown={(e) => onKey(e, cell)}
                    onFocus={() => setFocus({ r: cell.r, c: cell.c })}
                  >
                    <rect x={x} y={y} width={SIZE} height={SIZE} rx={6} className="seat-shape" />
                    {state === "sold" && (
                      <path
                        d={`M${x + 7} ${y + 7} L${x + SIZE - 7} ${y + SIZE - 7} M${x + SIZE - 7} ${y + 7} L${x + 7} ${y + SIZE - 7}`}
                        className="seat-mark"
                      />
                    )}
                    {state === "chosen" && (
                      <path d={`M${x + 7} ${y + 13} l4 5 l8 -10`} className="seat-mark" fill="none" />
                    )}
                    {state === "free" && (
                      <text x={x + SIZE / 2} y={y + SIZE * 0.66} className="seat-number" aria-hidden="true">
                        {cell.number}
                      </text>
                    )}
                  </g>
                );
              })}
            </g>
          ))}
        </svg>
      </div>
      <ul className="legend" aria-label="Seat states">
        {(
          [
            ["free", "Free"],
            ["chosen", "Your choice"],
            ["held", "Held by someone"],
            ["sold", "Sold"],
          ] as const
        ).map(([state, label]) => (
          <li key={state}>
            <svg width="22" height="22" viewBox="0 0 26 26" aria-hidden="true" className={`seat seat-${state}`}>
              <rect x="1" y="1" width="24" height="24" rx="6" className="seat-shape" />
              {state === "sold" && <path d="M8 8 L18 18 M18 8 L8 18" className="seat-mark" />}
              {state === "chosen" && <path d="M7 13 l4 5 l8 -10" className="seat-mark" fill="none" />}
            </svg>
            {label}
          </li>
        ))}
      </ul>
    </div>
  );
}
