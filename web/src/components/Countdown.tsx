/** Time left until a hold expires, ticking every second; `onExpire` fires once at zero. */
import { useEffect, useRef, useState } from "react";

export function secondsLeft(expiresAt: string, now: number): number {
  return Math.max(0, Math.ceil((Date.parse(expiresAt) - now) / 1000));
}

export function formatLeft(s: number): string {
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

export function Countdown({ expiresAt, onExpire }: { expiresAt: string; onExpire?: () => void }) {
  const [left, setLeft] = useState(() => secondsLeft(expiresAt, Date.now()));
  const fired = useRef(false);
  useEffect(() => {
    fired.current = false;
    const tick = () => {
      const s = secondsLeft(expiresAt, Date.now());
      setLeft(s);
      if (s === 0 && !fired.current) {
        fired.current = true;
        onExpire?.();
      }
    };
    tick();
    const id = setInterval(tick, 1000);
    return () => clearInterval(id);
  }, [expiresAt, onExpire]);
  const urgent = left <= 60;
  return (
    <div className={urgent ? "countdown countdown-urgent" : "countdown"} role="timer" aria-label="Time left to pay">
      {left > 0 ? (
        <>
          <span className="countdown-time">{formatLeft(left)}</span> left to pay
          {urgent && <span className="visually-hidden"> (less than a minute)</span>}
        </>
      ) : (
        <span>Time is up: your hold is being released</span>
      )}
    </div>
  );
}
