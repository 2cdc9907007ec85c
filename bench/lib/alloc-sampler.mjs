// Loaded into a process under test with `node --import` (bench/profile.ts --alloc): V8's sampling
// heap profiler over every allocation, the ones garbage-collected since included (what a call
// costs the collector, not what it keeps). SIGUSR2 starts sampling; the next SIGUSR2 writes the
// profile to $CHOKEPOINT_ALLOC_OUT and stops. With CHOKEPOINT_ALLOC_SURVIVORS=1 the objects the young
// generation's collector freed are left out: what is left outlived a scavenge (promoted to the old
// generation, or still alive) — what makes each scavenge, and the old generation, cost.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const session = new Session();
session.connect();
const post = (method, params = {}) =>
  new Promise((resolve, reject) => session.post(method, params, (e, r) => (e ? reject(e) : resolve(r))));
let sampling = false;
process.on('SIGUSR2', () => {
  const step = sampling
    ? post('HeapProfiler.stopSampling').then(({ profile }) => {
        writeFileSync(process.env.CHOKEPOINT_ALLOC_OUT, JSON.stringify(profile));
        process.stderr.write('allocation profile written\n');
      })
    : post('HeapProfiler.enable').then(() =>
        post('HeapProfiler.startSampling', {
          samplingInterval: 1024,
          includeObjectsCollectedByMajorGC: true,
          includeObjectsCollectedByMinorGC: process.env.CHOKEPOINT_ALLOC_SURVIVORS !== '1',
        }),
      );
  sampling = !sampling;
  step.catch((err) => process.stderr.write(`allocation sampler: ${err}\n`));
});
