/**
 * The session: the access token lives only in this module's memory. The refresh token is an
 * HttpOnly cookie the API sets (scripts never see it); a flag in localStorage only says that a
 * cookie session may exist, so a visitor without one does not call refresh for nothing.
 */
export type User = { id: string; email: string; role: "user" | "admin" };

type State = { token: string | null; user: User | null; ready: boolean };

const FLAG = "boxoffice.session";
let state: State = { token: null, user: null, ready: false };
const listeners = new Set<() => void>();

export const session = {
  get: (): State => state,
  subscribe(fn: () => void): () => void {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },
  set(next: Partial<State>) {
    state = { ...state, ...next };
    listeners.forEach((fn) => fn());
  },
  mayHaveCookie(): boolean {
    try {
      return localStorage.getItem(FLAG) === "1";
    } catch {
      return false;
    }
  },
  markCookie(present: boolean) {
    try {
      if (present) localStorage.setItem(FLAG, "1");
      else localStorage.removeItem(FLAG);
    } catch {
      /* storage disabled: refresh is then tried on every load */
    }
  },
};
