// Draining a node: two nodes (same database, same Redis bus) behind a tiny TCP load balancer
// (harness `startProxy`: each new connection goes to the first node that accepts). Two SDK
// clients connect through it and land on node A; A gets SIGTERM while both keep sending. A
// closes their WebSockets with 1001 and stops listening; the SDK reconnects to the same
// baseURL, i.e. through the balancer to node B, recovers its channels (POST /channels) and
// emits connection.recovered. Every message whose REST call was answered with success — before
// the SIGTERM, in flight during the drain, or after the failover — must be stored, as B shows.
//
// Two failovers:
//  - immediate: the balancer sends new connections to B at once. The SDK is back within its
//    5 s grace period, so it never emits connection.changed {online:false} (that event is only
//    dispatched when a connection stays unhealthy for 5 s); the test checks the 1001 close,
//    then connection.changed {online:true} and connection.recovered.
//  - slow: the balancer refuses new connections until both clients have reported
//    connection.changed {online:false}, then fails over to B.
//
// Runs on SQLite (both nodes open the same file) and on PostgreSQL; needs Redis.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { connect, disconnectAll, serverClient, startCluster, startProxy, uid, upsertUsers, waitFor } from './harness.js';

/**
 * Per user: messages sent before the drain, concurrently around the SIGTERM, at most one after
 * the other while the client fails over, and after it; in all well below the query's 100.
 */
const STEADY = 3;
const BURST = 10;
const MAX_WHILE_FAILING_OVER = 25;

/**
 * Sends messages one after the other on `ch` (ids `<prefix>-<n>`) until stopped (or
 * MAX_WHILE_FAILING_OVER were sent), recording which calls resolved (acknowledged) and which
 * failed. After a failure it waits until the client has recovered its connection (a
 * connection.recovered after the failed call began) before going on, so a balancer that
 * refuses connections is not hammered.
 */
function sender(ch, prefix) {
  const client = ch.getClient();
  const acked = [];
  const failed = [];
  let stopped = false;
  let n = 0;
  let recoveries = 0;
  let wake = () => {};
  const sub = client.on('connection.recovered', () => {
    recoveries += 1;
    wake();
  });
  const loop = (async () => {
    while (!stopped && n < MAX_WHILE_FAILING_OVER) {
      const id = `${prefix}-${n++}`;
      const seen = recoveries;
      try {
        await ch.sendMessage({ id, text: id });
        acked.push(id);
      } catch (err) {
        failed.push({ id, error: err.message });
        while (!stopped && recoveries === seen) await new Promise((resolve) => (wake = resolve));
      }
    }
    sub.unsubscribe();
  })();
  return {
    acked,
    failed,
    async stop() {
      stopped = true;
      wake();
      await loop;
    },
  };
}

/** Each user sends STEADY messages one after the other; all must succeed. Returns the ids. */
async function steady(users, tag) {
  const ids = [];
  for (const u of users) {
    for (let i = 0; i < STEADY; i++) {
      const id = `${u.id}-${tag}-${i}`;
      await u.ch.sendMessage({ id, text: id });
      ids.push(id);
    }
  }
  return ids;
}

/** Cluster A+B, a balancer in front, alice and bob connected through it (on A), one channel. */
async function scenario(cleanups) {
  const cluster = await startCluster();
  cleanups.push(() => cluster.stop());
  const [a, b] = cluster.nodes;
  const proxy = await startProxy([a, b]);
  cleanups.push(() => proxy.close());
  const alice = { id: uid('alice') };
  const bob = { id: uid('bob') };
  await upsertUsers(a, [alice.id, bob.id]);
  for (const u of [alice, bob]) {
    Object.assign(u, await connect(a, u.id, { baseURL: proxy.baseURL }));
    cleanups.push(() => disconnectAll(u.client));
  }
  const id = uid('drain');
  alice.ch = alice.client.channel('messaging', id, { members: [alice.id, bob.id] });
  await alice.ch.watch();
  bob.ch = bob.client.channel('messaging', id);
  await bob.ch.watch();
  assert.equal(proxy.accepted[b.label], 0, 'before the drain every connection went to A');
  assert.ok(proxy.accepted[a.label] >= 2, 'both WebSockets are on A');
  return { cluster, a, b, proxy, alice, bob };
}

/** The raw WebSocket's close code (register before the close). */
const closeCode = (client) => new Promise((resolve) => client.wsConnection.ws.once('close', (code) => resolve(code)));

/**
 * Fires BURST concurrent sends from each user and sends SIGTERM to `node` as soon as the first
 * of them is answered, so the rest are in flight (or not yet sent) during the drain. Returns
 * the ids that were acknowledged (after all settled) and how many failed. `afterSigterm` runs
 * right after the signal is sent.
 */
async function burstAroundSigterm(node, users, afterSigterm = () => {}) {
  const calls = users.flatMap((u) =>
    Array.from({ length: BURST }, (_, i) => {
      const id = `${u.id}-burst-${i}`;
      return u.ch.sendMessage({ id, text: id }).then(() => id);
    }),
  );
  await Promise.any(calls).catch(() => {});
  node.process.kill('SIGTERM');
  afterSigterm();
  const settled = await Promise.allSettled(calls);
  return {
    acked: settled.filter((s) => s.status === 'fulfilled').map((s) => s.value),
    failed: settled.filter((s) => s.status === 'rejected').length,
  };
}

/** Asserts every acknowledged id is stored, as node `b` answers channel.query. */
async function assertNoAckedMessageLost(b, ch, ackedIds) {
  const res = await serverClient(b).channel(ch.type, ch.id).query({ messages: { limit: 100 }, state: true, watch: false });
  assert.ok(res.messages.length < 100, `the query holds every message of the test (${res.messages.length})`);
  const stored = new Set(res.messages.map((m) => m.id));
  const lost = ackedIds.filter((id) => !stored.has(id));
  assert.deepEqual(lost, [], `acknowledged messages missing on ${b.label} (${ackedIds.length} acknowledged)`);
  assert.equal(new Set(ackedIds).size, ackedIds.length, 'ids are unique');
}

/** After the failover: a message from each side reaches the other, through B. */
async function exchange(alice, bob) {
  const toBob = waitFor(bob.ch, 'message.new', (e) => e.message?.text === 'alice after the drain');
  await alice.ch.sendMessage({ text: 'alice after the drain' });
  assert.equal((await toBob).user.id, alice.id);
  const toAlice = waitFor(alice.ch, 'message.new', (e) => e.message?.text === 'bob after the drain');
  await bob.ch.sendMessage({ text: 'bob after the drain' });
  assert.equal((await toAlice).user.id, bob.id);
}

describe('draining a node (SIGTERM) behind a load balancer', () => {
  const cleanups = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });

  test('immediate failover: 1001, reconnect to B, connection.recovered, no acknowledged message lost', async () => {
    const { a, b, proxy, alice, bob } = await scenario(cleanups);
    const users = [alice, bob];
    const before = users.map((u) => u.client._getConnectionID());
    const closes = users.map((u) => closeCode(u.client));
    const online = users.map((u) => waitFor(u.client, 'connection.changed', (e) => e.online === true, 15_000));
    const recovered = users.map((u) => waitFor(u.client, 'connection.recovered', () => true, 15_000));

    const acked = await steady(users, 'before');
    const senders = users.map((u) => sender(u.ch, `${u.id}-failover`));
    try {
      const burst = await burstAroundSigterm(a, users);
      acked.push(...burst.acked);

      assert.deepEqual(await Promise.all(closes), [1001, 1001], 'A closes both WebSockets with 1001');
      await Promise.all(online);
      await Promise.all(recovered);
      const exit = await a.exited;
      assert.equal(exit.code, 0, `A exits cleanly after draining (${JSON.stringify(exit)})`);
      const now = users.map((u) => u.client._getConnectionID());
      assert.ok(now[0] && now[1]);
      assert.notEqual(now[0], before[0], 'alice has a new connection id');
      assert.notEqual(now[1], before[1], 'bob has a new connection id');
      assert.ok(proxy.accepted[b.label] >= 2, 'the reconnects went to B');
      assert.ok(users.every((u) => u.client.wsConnection.isHealthy));
    } finally {
      await Promise.all(senders.map((s) => s.stop()));
    }
    acked.push(...senders.flatMap((s) => s.acked));
    acked.push(...(await steady(users, 'after')));
    await exchange(alice, bob);
    await assertNoAckedMessageLost(b, alice.ch, acked);
  });

  test('slow failover: connection.changed {online:false}, then reconnect to B and recover; nothing acknowledged lost', async () => {
    const { a, b, proxy, alice, bob } = await scenario(cleanups);
    const users = [alice, bob];
    const offline = users.map((u) => waitFor(u.client, 'connection.changed', (e) => e.online === false, 15_000));

    const acked = await steady(users, 'before');
    const senders = users.map((u) => sender(u.ch, `${u.id}-failover`));
    try {
      // The balancer has not noticed yet: from the SIGTERM on it refuses new connections
      // instead of sending them to B.
      const burst = await burstAroundSigterm(a, users, () => proxy.hold());
      acked.push(...burst.acked);
      await Promise.all(offline);
      assert.ok(users.every((u) => !u.client.wsConnection.isHealthy), 'offline while nothing accepts');
      const recovered = users.map((u) => waitFor(u.client, 'connection.recovered', () => true, 30_000));
      const online = users.map((u) => waitFor(u.client, 'connection.changed', (e) => e.online === true, 30_000));
      proxy.release();
      await Promise.all(online);
      await Promise.all(recovered);
      assert.ok(proxy.accepted[b.label] >= 2, 'the reconnects went to B');
      assert.equal((await a.exited).code, 0, 'A exited cleanly');
    } finally {
      await Promise.all(senders.map((s) => s.stop()));
    }
    acked.push(...senders.flatMap((s) => s.acked));
    acked.push(...(await steady(users, 'after')));
    await exchange(alice, bob);
    await assertNoAckedMessageLost(b, alice.ch, acked);
  });
});
