/** The signed-in user for components, and the guard of pages that need one. */
import { useSyncExternalStore, type ReactNode } from "react";
import { Navigate, useLocation } from "react-router";
import { session } from "../api/session";
import { Loading, Skeleton } from "../components/ui";

export function useSession() {
  return useSyncExternalStore(session.subscribe, session.get);
}

/** Renders its children for a signed-in user (an admin with `admin`), else sends to login and back. */
export function RequireAuth({ children, admin = false }: { children: ReactNode; admin?: boolean }) {
  const { user, ready } = useSession();
  const location = useLocation();
  if (!ready)
    return (
      <Loading label="Checking your session">
        <Skeleton lines={4} />
      </Loading>
    );
  if (!user) {
    const next = location.pathname + location.search;
    return <Navigate to={`/login?next=${encodeURIComponent(next)}`} replace />;
  }
  if (admin && user.role !== "admin")
    return (
      <div className="alert alert-error" role="alert">
        <p>This page is for organisers. Your account ({user.email}) is not an admin.</p>
      </div>
    );
  return <>{children}</>;
}

/** Where to go after login: a path on this site only (never another origin). */
export function safeNext(next: string | null): string {
  return next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
}
