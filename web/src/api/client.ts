/**
 * The typed API client, generated from the engine's OpenAPI document (`schema.d.ts`; see
 * `npm run gen:api`). It adds the access token, and on a 401 refreshes the session once
 * through the cookie flow and retries.
 */
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";
import { toApiError } from "./problem";
import { session, type User } from "./session";

export type Schemas = components["schemas"];
export type EventView = Schemas["EventView"];
export type BookingView = Schemas["BookingView"];
export type SeatsView = Schemas["SeatsView"];
export type PaymentView = Schemas["PaymentView"];

export const SESSION_HEADER = "x-boxoffice-session";

const pending = new WeakMap<Request, Request>();

const auth: Middleware = {
  onRequest({ request }) {
    const token = session.get().token;
    if (token && !request.headers.has("authorization")) request.headers.set("authorization", `Bearer ${token}`);
    if (!new URL(request.url, location.href).pathname.startsWith("/api/v1/auth/")) pending.set(request, request.clone());
    return request;
  },
  async onResponse({ request, response }) {
    const copy = pending.get(request);
    pending.delete(request);
    if (response.status !== 401 || !copy || !session.get().token) return response;
    const token = await refreshSession();
    if (!token) return response;
    copy.headers.set("authorization", `Bearer ${token}`);
    return fetch(copy);
  },
};

export const api = createClient<paths>({ baseUrl: "", credentials: "same-origin" });
api.use(auth);

/** The data of a call, or its problem document thrown as an ApiError. */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok || error !== undefined) throw toApiError(response.status, error);
  return data as T;
}

let refreshing: Promise<string | null> | null = null;
let timer: ReturnType<typeof setTimeout> | undefined;

function schedule(expiresIn: number) {
  clearTimeout(timer);
  // Refresh a minute early, so a request never goes out with a token about to lapse.
  const ms = Math.max(10, expiresIn - 60) * 1000;
  timer = setTimeout(() => void refreshSession(), ms);
}

async function loadUser(token: string): Promise<User | null> {
  const { data } = await api.GET("/api/v1/auth/me", { headers: { authorization: `Bearer ${token}` } });
  return data ? (data as User) : null;
}

/** Spends the refresh cookie for a new access token; null if there is no session. */
export function refreshSession(): Promise<string | null> {
  refreshing ??= (async () => {
    try {
      const { data, response } = await api.POST("/api/v1/auth/refresh", {
        body: {},
        headers: { [SESSION_HEADER]: "cookie" },
      });
      if (!response.ok || !data) {
        session.markCookie(false);
        session.set({ token: null, user: null, ready: true });
        return null;
      }
      const user = session.get().user ?? (await loadUser(data.access_token));
      session.set({ token: data.access_token, user, ready: true });
      schedule(data.expires_in);
      return data.access_token;
    } catch {
      session.set({ ready: true });
      return null;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** On start: resume a cookie session if one may exist. */
export async function restoreSession(): Promise<void> {
  if (session.mayHaveCookie()) await refreshSession();
  else session.set({ ready: true });
}

export async function login(email: string, password: string): Promise<User> {
  const data = await unwrap(
    api.POST("/api/v1/auth/login", { body: { email, password }, headers: { [SESSION_HEADER]: "cookie" } }),
  );
  const user = await loadUser(data.access_token);
  if (!user) throw new Error("signed in, but the account could not be read");
  session.markCookie(true);
  session.set({ token: data.access_token, user, ready: true });
  schedule(data.expires_in);
  return user;
}

export async function register(email: string, password: string): Promise<User> {
  await unwrap(api.POST("/api/v1/auth/register", { body: { email, password } }));
  return login(email, password);
}

export async function logout(): Promise<void> {
  clearTimeout(timer);
  try {
    await api.POST("/api/v1/auth/logout", { body: {}, headers: { [SESSION_HEADER]: "cookie" } });
  } finally {
    session.markCookie(false);
    session.set({ token: null, user: null, ready: true });
  }
}
