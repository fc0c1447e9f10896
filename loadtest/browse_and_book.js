// A realistic mix ramping to 1,000 VUs with think time: search and list events, open one, look
// at its seats, hold, poll the booking, then sometimes cancel and sometimes pay (tok_ok with the
// simulated provider) and look at the payment.
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter } from 'k6/metrics';
import { API, auth, adminToken, createEvent, makeUsers } from './lib.js';

const SMOKE = !!__ENV.SMOKE;
const VUS = Number(__ENV.VUS || (SMOKE ? 20 : 1000));
const held = new Counter('holds_created');
const cancelled = new Counter('holds_cancelled');
const paid = new Counter('payments_started');
const WORDS = ['rock', 'jazz', 'opera', 'talk', 'festival'];

export const options = {
  setupTimeout: '600s',
  scenarios: {
    browse: {
      executor: 'ramping-vus',
      startVUs: 0,
      stages: SMOKE
        ? [{ duration: '2s', target: VUS }, { duration: '3s', target: VUS }]
        : [{ duration: '30s', target: VUS }, { duration: '60s', target: VUS }, { duration: '10s', target: 0 }],
      gracefulRampDown: '5s',
    },
  },
  thresholds: {
    http_req_failed: ['rate==0'],
    // The smoke run (CI) checks behaviour, not speed: the machine may be busy.
    'http_req_duration{phase:browse}': SMOKE ? [] : ['p(95)<50', 'p(99)<150'],
    checks: ['rate==1'],
  },
  summaryTrendStats: ['avg', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
};

export function setup() {
  const admin = adminToken();
  const events = [];
  for (let i = 0; i < 20; i++) {
    const seated = i % 4 === 0;
    const body = {
      title: `${WORDS[i % WORDS.length]} night ${i}`, description: `load test event ${i}`,
      venue: `Venue ${i % 5}`, starts_at: `2030-0${1 + (i % 9)}-15T20:00:00Z`, price_cents: 1000 + i, currency: 'EUR',
    };
    if (seated) {
      body.seat_map = { sections: [{ name: 'Stalls', rows: Array.from({ length: 40 }, (_, r) => ({ label: `R${r + 1}`, seats: 50 })) }] };
    } else {
      body.capacity = 100000;
    }
    events.push(createEvent(admin, body).id);
  }
  return { events, tokens: makeUsers(VUS, 'browse') };
}

function think() {
  sleep(1 + Math.random() * 2);
}

export default function (data) {
  const token = data.tokens[(__VU - 1) % data.tokens.length];
  const tags = { tags: { phase: 'browse' } };
  const list = http.get(`${API}/events?q=${WORDS[Math.floor(Math.random() * WORDS.length)]}&available=true&limit=10`, tags);
  check(list, { 'list 200': (r) => r.status === 200 });
  think();
  const id = data.events[Math.floor(Math.random() * data.events.length)];
  const ev = http.get(`${API}/events/${id}`, tags);
  check(ev, { 'event 200': (r) => r.status === 200 });
  if (ev.json('seated')) {
    check(http.get(`${API}/events/${id}/seats`, tags), { 'seats 200': (r) => r.status === 200 });
  }
  think();
  const quantity = 1 + Math.floor(Math.random() * 2);
  const hold = http.post(`${API}/events/${id}/bookings`, JSON.stringify({ quantity }),
    Object.assign(auth(token, { 'Idempotency-Key': `${__VU}-${__ITER}-${Date.now()}` }), tags));
  check(hold, { 'hold 201 or 409': (r) => r.status === 201 || r.status === 409 });
  if (hold.status !== 201) return;
  held.add(1);
  const booking = hold.json('id');
  think();
  const status = http.get(`${API}/bookings/${booking}`, Object.assign(auth(token), tags));
  check(status, { 'booking is held': (r) => r.status === 200 && r.json('status') === 'held' });
  if (Math.random() < 0.2) {
    const c = http.post(`${API}/bookings/${booking}/cancel`, null, Object.assign(auth(token), tags));
    check(c, { 'cancel 200': (r) => r.status === 200 && r.json('status') === 'cancelled' });
    cancelled.add(1);
  } else if (Math.random() < 0.4) {
    const pay = http.post(`${API}/bookings/${booking}/payments`, JSON.stringify({ method: 'card', card_token: 'tok_ok' }),
      Object.assign(auth(token, { 'Idempotency-Key': `pay-${__VU}-${__ITER}-${Date.now()}` }), tags));
    check(pay, { 'payment 202': (r) => r.status === 202 && r.json('status') === 'pending' });
    if (pay.status !== 202) return;
    paid.add(1);
    think();
    const p = http.get(`${API}/payments/${pay.json('id')}`, Object.assign(auth(token), tags));
    check(p, { 'payment pending or succeeded': (r) => r.status === 200 && ['pending', 'succeeded'].includes(r.json('status')) });
  }
  think();
}
