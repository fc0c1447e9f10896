// One hot event through the gateway (loadtest/cluster.sh): VUs hold one seat at a time with no
// pause, on a fresh event of ample capacity, so the figure is holds/s of one event's owner.
import http from 'k6/http';
import { Counter } from 'k6/metrics';

const setup = JSON.parse(open(__ENV.SETUP_FILE));
const API = `${__ENV.BASE_URL}/api/v1`;
const held = new Counter('holds_created');
http.setResponseCallback(http.expectedStatuses({ min: 200, max: 299 }));

export const options = {
  scenarios: { hot: { executor: 'constant-vus', vus: Number(__ENV.VUS || 200), duration: __ENV.DURATION || '10s' } },
  summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
};

export default function () {
  const token = setup.tokens[(__VU - 1) % setup.tokens.length];
  const r = http.post(`${API}/events/${__ENV.EVENT}/bookings`, '{"quantity":1}', {
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'Idempotency-Key': `hot-${__VU}-${__ITER}-${Date.now()}` },
  });
  if (r.status === 201) held.add(1);
}
