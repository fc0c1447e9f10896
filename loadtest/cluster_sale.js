// Flash sale on a cluster (loadtest/cluster.sh): VUs hold seats on several events through the
// gateway while the runner kills one node and starts it again. Every hold answer is written to
// the console file as one line, `<ms> <status> <event index> <retry-after|-> <booking id|code[/gateway]|->`,
// so that the runner can time the failover, check every error and find every 201 in the
// database. The setup (events, users' tokens) comes from the file in SETUP_FILE.
import http from 'k6/http';
import { sleep } from 'k6';
import { Counter } from 'k6/metrics';

const setup = JSON.parse(open(__ENV.SETUP_FILE));
const API = `${__ENV.BASE_URL}/api/v1`;
const VUS = Number(__ENV.VUS || 1000);
const held = new Counter('holds_created');

// 409 (sold out, per-user limit) is an expected answer; 503 is counted and checked by the runner.
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }, 409));

export const options = {
  scenarios: { sale: { executor: 'constant-vus', vus: VUS, duration: __ENV.DURATION || '60s' } },
  summaryTrendStats: ['avg', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
};

export default function () {
  const token = setup.tokens[(__VU - 1) % setup.tokens.length];
  const ev = Math.floor(Math.random() * setup.events.length);
  const r = http.post(`${API}/events/${setup.events[ev]}/bookings`, JSON.stringify({ quantity: 1 + Math.floor(Math.random() * 4) }), {
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'Idempotency-Key': `${__VU}-${__ITER}-${Date.now()}` },
    timeout: '20s',
  });
  const retry = r.headers['Retry-After'] || '-';
  let what = '-';
  if (r.status === 201) {
    what = r.json('id');
    held.add(1);
  } else if (r.status >= 400 && r.body) {
    // The gateway's own 503 (a node died with the request on it) says so in its detail.
    try { what = (r.json('code') || '-') + (String(r.json('detail')).includes('serving this request') ? '/gateway' : ''); } catch (_) { what = 'not-json'; }
  }
  console.log(`${Date.now()} ${r.status} ${ev} ${retry} ${what}`);
  if (r.status === 201) sleep(0.2 + Math.random() * 0.3);
  else if (r.status === 409) sleep(0.5 + Math.random());
  // 503 (the event is moving) or a network error: come back soon, as a client honouring a short
  // Retry-After would.
  else sleep(0.5 + Math.random() * 0.5);
}
