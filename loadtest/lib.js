// Shared helpers of the k6 scripts: API base, JSON requests, and set-up of users and events.
import http from 'k6/http';
import { check, fail } from 'k6';

export const BASE = __ENV.BASE_URL || 'http://127.0.0.1:18090';
export const API = `${BASE}/api/v1`;
export const JSON_HEADERS = { 'Content-Type': 'application/json' };

// 409 is an expected answer when seats run out: not a failed request.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 409));

export function auth(token, extra) {
  return { headers: Object.assign({ Authorization: `Bearer ${token}` }, JSON_HEADERS, extra || {}) };
}

export function adminToken() {
  const r = http.post(`${API}/auth/login`, JSON.stringify({ email: __ENV.ADMIN_EMAIL, password: __ENV.ADMIN_PASSWORD }), { headers: JSON_HEADERS });
  if (r.status !== 200) fail(`admin login failed: ${r.status} ${r.body}`);
  return r.json('access_token');
}

export function createEvent(admin, body) {
  const r = http.post(`${API}/events`, JSON.stringify(body), auth(admin));
  if (r.status !== 201) fail(`event creation failed: ${r.status} ${r.body}`);
  return r.json();
}

// Registers and logs in `n` users, 50 at a time; returns their access tokens.
export function makeUsers(n, prefix) {
  const tokens = [];
  const run = `${prefix}-${Date.now()}`;
  for (let start = 0; start < n; start += 50) {
    const batch = [];
    for (let i = start; i < Math.min(n, start + 50); i++) {
      batch.push(['POST', `${API}/auth/register`, JSON.stringify({ email: `${run}-${i}@load.test`, password: 'load-test-password' }), { headers: JSON_HEADERS }]);
    }
    http.batch(batch).forEach((r) => { if (r.status !== 201) fail(`register: ${r.status} ${r.body}`); });
    const logins = batch.map((b) => ['POST', `${API}/auth/login`, JSON.stringify({ email: JSON.parse(b[2]).email, password: 'load-test-password' }), { headers: JSON_HEADERS }]);
    http.batch(logins).forEach((r) => {
      if (r.status !== 200) fail(`login: ${r.status} ${r.body}`);
      tokens.push(r.json('access_token'));
    });
  }
  return tokens;
}

export function isHeld(r) {
  return check(r, { 'hold answered 201 or 409': (x) => x.status === 201 || x.status === 409 });
}
