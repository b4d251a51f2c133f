// Rolling upgrade without downtime: two nodes (same database, same Redis bus) behind the
// harness's TCP balancer, stream-chat clients chatting through it. Each node in turn is
// drained (SIGTERM) and replaced, on the same address, by the next version — this tree plus
// one expand migration, built by tests/upgrade/build-next.sh into WARD_BIN_NEXT. The first
// replacement migrates the database while the other node still runs the previous version.
// No acknowledged message may be lost, every client is back within 5 s of each drain, and the
// audit log exported at the end verifies with the auditor's `ward-audit` tool.
//
// Runs on PostgreSQL (several nodes share a database only there); needs Redis. Without WARD_BIN_NEXT it fails in CI and is
// skipped elsewhere, with the command to build it.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import {
  DB_KIND,
  WARD_BIN,
  connect,
  disconnectAll,
  poll,
  healthz,
  serverClient,
  startCluster,
  startProxy,
  startServer,
  REDIS_URL,
  uid,
  upsertUsers,
  waitFor,
} from './harness.js';

const NEXT = process.env.WARD_BIN_NEXT;
const missing = !NEXT || !existsSync(NEXT);
if (missing && process.env.CI) {
  throw new Error('WARD_BIN_NEXT is not built: run tests/upgrade/build-next.sh (scripts/test.sh does)');
}
/** A client must be back (connection.recovered) this soon after its node closed it. */
const BACK_WITHIN_MS = 5_000;

/** Runs `ward <args>` of `bin` against the deployment's database with a node's data dir. */
function ward(bin, cluster, dataDir, args) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WARD_')));
  const out = spawnSync(bin, args, {
    env: { ...env, WARD_DATABASE_URL: cluster.databaseUrl, WARD_DATA_DIR: dataDir, WARD_LOG: 'warn' },
    encoding: 'utf8',
  });
  assert.equal(out.status, 0, `ward ${args.join(' ')}: ${out.stderr}`);
  return out.stdout;
}

/** Sends one message after the other until stopped; records acknowledged ids. */
function sender(ch, prefix) {
  const acked = [];
  let stopped = false;
  let n = 0;
  const loop = (async () => {
    while (!stopped) {
      const id = `${prefix}-${n++}`;
      try {
        await ch.sendMessage({ id, text: id });
        acked.push(id);
      } catch {
        // Unacknowledged, so never counted. While the node drains the SDK reconnects
        // through the balancer: wait for that; otherwise back off a little.
        if (ch.getClient().wsConnection?.isHealthy) await new Promise((resolve) => setTimeout(resolve, 50));
        else await waitFor(ch.getClient(), 'connection.recovered', () => true, 15_000).catch(() => {});
      }
    }
  })();
  return {
    acked,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

// Several nodes share a database only on PostgreSQL (one process owns an SQLite file).
const skip = DB_KIND !== 'postgres' ? 'several nodes need PostgreSQL' : missing && 'build WARD_BIN_NEXT with tests/upgrade/build-next.sh';

describe('rolling upgrade behind a load balancer', { skip }, () => {
  const cleanups = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });

  test('each node drained and replaced by the next version: nothing lost, clients back within 5 s, the log verifies', async () => {
    const cluster = await startCluster();
    cleanups.push(() => cluster.stop());
    const [a, b] = cluster.nodes;
    const proxy = await startProxy([a, b]);
    cleanups.push(() => proxy.close());

    // Before: the next version's migration is pending and safe while this version runs.
    const plan = ward(NEXT, cluster, a.dataDir, ['migrate', '--check']);
    assert.match(plan, /pending \d{4} upgrade drill\s+expand/);
    assert.match(plan, /safe while the previous version runs: yes/);

    const names = ['ann', 'ben', 'cat', 'dan'].map((n) => uid(n));
    await upsertUsers(a, names);
    const users = [];
    for (const id of names) {
      const u = { id, ...(await connect(a, id, { baseURL: proxy.baseURL })) };
      cleanups.push(() => disconnectAll(u.client));
      users.push(u);
    }
    const cid = uid('upgrade');
    users[0].ch = users[0].client.channel('messaging', cid, { members: names });
    await users[0].ch.watch();
    for (const u of users.slice(1)) {
      u.ch = u.client.channel('messaging', cid);
      await u.ch.watch();
    }
    const senders = users.map((u) => sender(u.ch, `${u.id}-m`));
    const replaced = [];
    const gaps = [];
    try {
      for (const [old, other] of [
        [a, b],
        [b, a],
      ]) {
        // Some traffic on the node about to go.
        const floor = senders.map((s) => s.acked.length);
        await poll('messages flow', () => senders.map((s) => s.acked.length), (n) => n.every((c, i) => c >= floor[i] + 3), { timeoutMs: 15_000 });
        // Out of rotation first: new connections go to the other node.
        proxy.prefer(other.label);
        const port = new URL(old.baseURL).port;
        const closedAt = new Map();
        for (const u of users) {
          u.client.wsConnection.ws.once('close', () => closedAt.set(u.id, Date.now()));
        }
        const back = users.map((u) =>
          waitFor(u.client, 'connection.recovered', () => true, 30_000).then(() => ({ id: u.id, at: Date.now() })),
        );
        old.process.kill('SIGTERM');
        assert.equal((await old.exited).code, 0, `${old.label} drains and exits cleanly`);
        for (const r of await Promise.all(back)) {
          assert.ok(closedAt.has(r.id), `${r.id} was on ${old.label}`);
          const gap = r.at - closedAt.get(r.id);
          assert.ok(gap <= BACK_WITHIN_MS, `${r.id} was back ${gap} ms after ${old.label} closed it`);
          gaps.push(gap);
        }
        // The next version on the same address, back in rotation.
        const next = await startServer({
          bin: NEXT,
          databaseUrl: cluster.databaseUrl,
          apiKey: cluster.apiKey,
          secret: cluster.secret,
          label: `${old.label}-next`,
          files: { 'root.key': cluster.rootKey },
          env: {
            WARD_BIND: `127.0.0.1:${port}`,
            WARD_REDIS_URL: REDIS_URL,
            WARD_REDIS_CHANNEL: cluster.redisChannel,
            WARD_NODE_ID: `${old.label}-next`,
          },
        });
        cleanups.push(() => next.stop());
        replaced.push(next);
        await poll(`${next.label} is healthy on the bus`, () => healthz(next), (h) => h.status === 200 && h.body?.bus === 'up', { timeoutMs: 15_000 });
      }
      const floor = senders.map((s) => s.acked.length);
      await poll('messages flow on the new version', () => senders.map((s) => s.acked.length), (n) => n.every((c, i) => c >= floor[i] + 3), { timeoutMs: 15_000 });
    } finally {
      await Promise.all(senders.map((s) => s.stop()));
    }

    // Every acknowledged message is stored, as the new version answers.
    const acked = senders.flatMap((s) => s.acked);
    const stored = new Set();
    const server = serverClient(replaced[1]);
    let before;
    for (;;) {
      const res = await server.channel('messaging', cid).query({ messages: { limit: 300, ...(before ? { id_lt: before } : {}) }, state: true, watch: false });
      for (const m of res.messages) stored.add(m.id);
      if (res.messages.length < 300) break;
      before = res.messages[0].id;
    }
    const lost = acked.filter((id) => !stored.has(id));
    assert.deepEqual(lost, [], `acknowledged messages lost (${acked.length} acknowledged)`);
    assert.ok(acked.length >= 4 * 9, `traffic flowed throughout (${acked.length})`);
    // The migration ran; the previous version sees it as applied by a newer version.
    const after = ward(WARD_BIN, cluster, replaced[0].dataDir, ['migrate', '--check']);
    assert.match(after, /applied \d{4} by a newer version/);

    // The audit log, exported with the new version, verifies with the auditor's tool.
    const dir = mkdtempSync(path.join(tmpdir(), 'ward-upgrade-audit-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const key = ward(NEXT, cluster, replaced[0].dataDir, ['audit', 'verifier-key']).trim();
    const bundle = path.join(dir, 'bundle');
    ward(NEXT, cluster, replaced[0].dataDir, ['audit', 'export', '--out', bundle]);
    const tool = path.join(path.dirname(WARD_BIN), 'ward-audit');
    writeFileSync(path.join(dir, 'key'), key);
    const verified = spawnSync(tool, ['verify', bundle, '--key', key], { encoding: 'utf8' });
    assert.equal(verified.status, 0, `${verified.stdout}${verified.stderr}`);
    assert.match(verified.stdout, /^OK /);
    console.log(`rolling upgrade: ${acked.length} messages acknowledged, none lost; clients back after ${gaps.join(', ')} ms`);
  });
});
