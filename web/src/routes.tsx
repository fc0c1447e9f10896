/** The pages. Admin pages load as their own chunks, so buyers never download them. */
import { lazy, Suspense, type ReactNode } from "react";
import { createBrowserRouter } from "react-router";
import { Layout } from "./components/Layout";
import { EventsPage } from "./pages/EventsPage";
import { EventPage } from "./pages/EventPage";
import { LoginPage, RegisterPage } from "./pages/AuthPages";
import { RequireAuth } from "./lib/auth";
import { Loading, Skeleton } from "./components/ui";
import { NotFoundPage } from "./pages/NotFoundPage";

const BookingPage = lazy(() => import("./pages/BookingPage"));
const MyBookingsPage = lazy(() => import("./pages/MyBookingsPage"));
const AdminHome = lazy(() => import("./admin/AdminHome"));
const AdminEventPage = lazy(() => import("./admin/AdminEventPage"));
const EventForm = lazy(() => import("./admin/EventForm"));
const CheckInPage = lazy(() => import("./admin/CheckInPage"));

function Lazy({ children }: { children: ReactNode }) {
  return (
    <Suspense
      fallback={
        <Loading label="Loading the page">
          <Skeleton lines={6} />
        </Loading>
      }
    >
      {children}
    </Suspense>
  );
}

const authed = (node: ReactNode, admin = false) => (
  <RequireAuth admin={admin}>
    <Lazy>{node}</Lazy>
  </RequireAuth>
);

export const router = createBrowserRouter([
  {
    element: <Layout />,
    children: [
      { path: "/", element: <EventsPage /> },
      { path: "/events/:id", element: <EventPage /> },
      { path: "/login", element: <LoginPage /> },
      { path: "/register", element: <RegisterPage /> },
      { path: "/bookings", element: authed(<MyBookingsPage />) },
      { path: "/bookings/:id", element: authed(<BookingPage />) },
      { path: "/admin", element: authed(<AdminHome />, true) },
      { path: "/admin/events/new", element: authed(<EventForm />, true) },
      { path: "/admin/events/:id", element: authed(<AdminEventPage />, true) },
      { path: "/admin/events/:id/edit", element: authed(<EventForm />, true) },
      { path: "/admin/check-in", element: authed(<CheckInPage />, true) },
      { path: "/admin/events/:id/check-in", element: authed(<CheckInPage />, true) },
      { path: "*", element: <NotFoundPage /> },
    ],
  },
]);
