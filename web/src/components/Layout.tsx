/** The frame of every page: skip link, header with navigation and account, the page, focus on navigation. */
import { useEffect, useRef } from "react";
import { Link, NavLink, Outlet, useLocation, useNavigate } from "react-router";
import { logout } from "../api/client";
import { useSession } from "../lib/auth";

/** Sets the document title of a page. */
export function useTitle(title: string) {
  useEffect(() => {
    document.title = `${title} · boxoffice`;
  }, [title]);
}

export function Layout() {
  const { user, ready } = useSession();
  const navigate = useNavigate();
  const location = useLocation();
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);
  // After a client-side navigation, move focus to the page so screen readers start there.
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    main.current?.focus();
  }, [location.pathname]);

  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="site-header">
        <div className="container header-inner">
          <Link to="/" className="brand">
            <span aria-hidden="true" className="brand-mark">
              ◆
            </span>{" "}
            boxoffice
          </Link>
          <nav aria-label="Main">
            <ul className="nav">
              <li>
                <NavLink to="/" end>
                  Events
                </NavLink>
              </li>
              {user && (
                <li>
                  <NavLink to="/bookings" end>
                    My bookings
                  </NavLink>
                </li>
              )}
              {user?.role === "admin" && (
                <li>
                  <NavLink to="/admin">Organiser</NavLink>
                </li>
              )}
            </ul>
          </nav>
          <div className="account">
            {!ready ? (
              <span className="account-pending" aria-hidden="true" />
            ) : user ? (
              <>
                <span className="account-email" title={user.email}>
                  {user.email}
                </span>
                <button
                  type="button"
                  className="btn btn-quiet"
                  onClick={() => {
                    void logout().then(() => navigate("/"));
                  }}
                >
                  Log out
                </button>
              </>
            ) : (
              <>
                <Link to={`/login?next=${encodeURIComponent(location.pathname)}`} className="btn btn-quiet">
                  Log in
                </Link>
                <Link to={`/register?next=${encodeURIComponent(location.pathname)}`} className="btn btn-primary">
                  Sign up
                </Link>
              </>
            )}
          </div>
        </div>
      </header>
      <main id="main" ref={main} tabIndex={-1} className="container">
        <Outlet />
      </main>
      <footer className="site-footer">
        <div className="container">boxoffice · tickets that are never sold twice</div>
      </footer>
    </>
  );
}
