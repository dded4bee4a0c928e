import * as assert from 'assert';
import { DeviceScheduler } from '../../src/sidecar/scheduler';

const tick = () => new Promise((r) => setImmediate(r));

describe('device scheduler', () => {
  it('runs one unit at a time and lets a question jump ahead of queued ingestion', async () => {
    const s = new DeviceScheduler();
    const order: string[] = [];
    let running = 0;
    const unit = (name: string, p: 'ask' | 'ingest' | 'commit') => s.with(p, async () => {
      running++;
      assert.strictEqual(running, 1, 'never two units on the device');
      order.push(name);
      await tick();
      running--;
    });
    const jobs = [unit('i1', 'ingest'), unit('i2', 'ingest'), unit('i3', 'ingest')];
    await tick(); // i1 is running, i2 and i3 wait
    jobs.push(unit('ask', 'ask'), unit('commit', 'commit'));
    await Promise.all(jobs);
    assert.deepStrictEqual(order, ['i1', 'ask', 'commit', 'i2', 'i3']);
  });

  it('releases on failure and ignores a double release', async () => {
    const s = new DeviceScheduler();
    await assert.rejects(s.with('ask', async () => { throw new Error('boom'); }), /boom/);
    const lease = await s.acquire('ingest');
    lease.release();
    lease.release();
    const again = await s.acquire('ingest');
    assert.strictEqual(s.waiting(), 0);
    again.release();
  });
});
