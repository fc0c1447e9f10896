import { Link } from "react-router";
import { useTitle } from "../components/Layout";

export function NotFoundPage() {
  useTitle("Page not found");
  return (
    <section>
      <h1>Page not found</h1>
      <p>
        There is nothing here. <Link to="/">See all events</Link>.
      </p>
    </section>
  );
}
