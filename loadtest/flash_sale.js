// Flash sale: 1,000 VUs, each logged in once (in setup), all trying to hold seats on ONE event
// of 5,000 seats at once. Thresholds on latency and checks; the runner then verifies through
// the database that nothing was oversold and that every 201 is a live booking.
// (Paying for the holds joins this script when the payments API exists.)
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter } from 'k6/metrics';
import { API, auth, adminToken, createEvent, makeUsers } from './lib.js';

const SMOKE = !!__ENV.SMOKE;
const VUS = Number(__ENV.VUS || (SMOKE ? 20 : 1000));
const held = new Counter('holds_created');
const seatsHeld = new Counter('seats_held');
const soldOut = new Counter('holds_sold_out');

export const options = {
  setupTimeout: '600s',
  scenarios: {
    rush: { executor: 'constant-vus', vus: VUS, duration: __ENV.DURATION || (SMOKE ? '5s' : '30s') },
  },
  thresholds: {
    http_req_failed: ['rate==0'],
    // The smoke run (CI) checks behaviour, not speed: the machine may be busy.
    'http_req_duration{phase:rush}': SMOKE ? [] : ['p(95)<50', 'p(99)<150'],
    checks: ['rate==1'],
  },
  summaryTrendStats: ['avg', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
};

export function setup() {
  const admin = adminToken();
  const event = createEvent(admin, {
    title: `Flash sale ${Date.now()}`, venue: 'Load Arena', starts_at: '2030-01-01T20:00:00Z',
    price_cents: 5000, currency: 'EUR', capacity: Number(__ENV.CAPACITY || 5000), max_per_booking: 4,
  });
  return { event: event.id, tokens: makeUsers(VUS, 'flash') };
}

export default function (data) {
  const token = data.tokens[(__VU - 1) % data.tokens.length];
  const quantity = 1 + Math.floor(Math.random() * 4);
  const r = http.post(`${API}/events/${data.event}/bookings`, JSON.stringify({ quantity }),
    Object.assign(auth(token, { 'Idempotency-Key': `${__VU}-${__ITER}-${Date.now()}` }), { tags: { phase: 'rush' } }));
  check(r, {
    // An account that reached the event's per-account limit is refused too (per_user_limit).
    'hold is 201 or 409 sold_out/per_user_limit': (x) =>
      x.status === 201 || (x.status === 409 && ['sold_out', 'per_user_limit'].includes(x.json('code'))),
  });
  if (r.status === 201) {
    held.add(1);
    seatsHeld.add(r.json('quantity'));
    sleep(0.2 + Math.random() * 0.3);
  } else {
    soldOut.add(1);
    // Sold out: look again a little later, as a person refreshing the page would.
    const e = http.get(`${API}/events/${data.event}`, { tags: { phase: 'rush' } });
    check(e, { 'event readable': (x) => x.status === 200 });
    sleep(0.5 + Math.random());
  }
}
