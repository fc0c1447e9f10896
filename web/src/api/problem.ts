/** An error answer of the API: its problem document (RFC 9457), with per-field messages. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly errors: Record<string, string>;

  constructor(status: number, code: string, detail: string, errors: Record<string, string> = {}) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.errors = errors;
  }

  /** The message of one field, if the API named that field. */
  field(name: string): string | undefined {
    return this.errors[name];
  }
}

/** Reads a problem document from anything an openapi-fetch call returned as `error`. */
export function toApiError(status: number, body: unknown): ApiError {
  if (body && typeof body === "object") {
    const b = body as Record<string, unknown>;
    const errors: Record<string, string> = {};
    if (b.errors && typeof b.errors === "object") {
      for (const [k, v] of Object.entries(b.errors as Record<string, unknown>)) {
        errors[k] = Array.isArray(v) ? v.join("; ") : String(v);
      }
    }
    const detail = typeof b.detail === "string" ? b.detail : typeof b.title === "string" ? b.title : "request failed";
    const code = typeof b.code === "string" ? b.code : "error";
    return new ApiError(status, code, detail, errors);
  }
  return new ApiError(status, "error", status >= 500 ? "the server could not answer; try again" : "request failed");
}

/** A human sentence for any thrown value. */
export function messageOf(e: unknown): string {
  if (e instanceof ApiError) return e.detail;
  if (e instanceof TypeError) return "the server cannot be reached; check your connection";
  if (e instanceof Error) return e.message;
  return "something went wrong";
}
