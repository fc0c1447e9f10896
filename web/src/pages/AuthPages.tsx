/** Log in and sign up; both go back to the page that asked (`?next=`). */
import { useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router";
import { login, register } from "../api/client";
import { ApiError } from "../api/problem";
import { Field, ProblemAlert } from "../components/ui";
import { useTitle } from "../components/Layout";
import { safeNext } from "../lib/auth";

type Submit = (email: string, password: string) => Promise<unknown>;

/** The form of both pages; `submit` is the API call (a test passes its own). */
export function AuthForm({ mode, submit, onDone }: { mode: "login" | "register"; submit: Submit; onDone: () => void }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const fieldError = (f: string) => (error instanceof ApiError ? error.field(f) : undefined);

  const onSubmit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await submit(email.trim(), password);
      onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form onSubmit={onSubmit} noValidate className="form narrow" aria-busy={busy}>
      <ProblemAlert error={error} shownFields={["email", "password"]} />
      <Field
        label="E-mail"
        type="email"
        name="email"
        autoComplete="email"
        required
        value={email}
        onChange={(e) => setEmail(e.target.value)}
        error={fieldError("email")}
      />
      <Field
        label="Password"
        type="password"
        name="password"
        autoComplete={mode === "login" ? "current-password" : "new-password"}
        required
        value={password}
        onChange={(e) => setPassword(e.target.value)}
        error={fieldError("password")}
        hint={mode === "register" ? "At least 8 characters." : undefined}
      />
      <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
        {mode === "login" ? (busy ? "Logging in…" : "Log in") : busy ? "Creating your account…" : "Create account"}
      </button>
    </form>
  );
}

export function LoginPage() {
  useTitle("Log in");
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const next = safeNext(params.get("next"));
  return (
    <section className="auth-page">
      <h1>Log in</h1>
      <AuthForm mode="login" submit={login} onDone={() => navigate(next, { replace: true })} />
      <p>
        New here? <Link to={`/register?next=${encodeURIComponent(next)}`}>Create an account</Link>
      </p>
    </section>
  );
}

export function RegisterPage() {
  useTitle("Create an account");
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const next = safeNext(params.get("next"));
  return (
    <section className="auth-page">
      <h1>Create an account</h1>
      <AuthForm mode="register" submit={register} onDone={() => navigate(next, { replace: true })} />
      <p>
        Already have an account? <Link to={`/login?next=${encodeURIComponent(next)}`}>Log in</Link>
      </p>
    </section>
  );
}
