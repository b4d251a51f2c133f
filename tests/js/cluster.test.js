// Two nodes of one deployment (same database, same Redis bus, distinct node ids): a client on
// node A sees what a user does through node B — messages, reactions, typing, presence and
// watching — watcher counts add up across nodes, and the per-user connection cap is
// cluster-wide. Runs on SQLite (both processes open the same WAL file) and on PostgreSQL.
// Needs Redis (WARD_JS_REDIS, default redis://127.0.0.1:6379).
//
// Node state (who is connected, who watches what) travels the bus asynchronously: before
// asserting on it from the other node the tests poll that node (bounded) until it has heard.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { connect, disconnectAll, poll, serverClient, startCluster, uid, upsertUsers, waitFor, wsError } from './harness.js';

/** A channel's watcher_count as `node` reports it over REST (server-side query, no watch). */
const watcherCountOn = async (node, type, id) =>
  (await serverClient(node).channel(type, id).query({ state: true, watch: false })).watcher_count;

/** Polls `node` until it reports `n` watchers of the channel. */
const untilWatchers = (node, ch, n) =>
  poll(`${node.label} reports watcher_count ${n} on ${ch.cid}`, () => watcherCountOn(node, ch.type, ch.id), (c) => c === n);

/** WebSockets open on every node, as `node` last heard (GET /metrics). */
async function clusterConnections(node) {
  const text = await (await fetch(node.metricsURL)).text();
  const m = /^ward_cluster_open_connections (\S+)$/m.exec(text);
  if (!m) throw new Error(`no ward_cluster_open_connections in ${node.label}'s /metrics`);
  return Number(m[1]);
}

const untilClusterConnections = (node, n) =>
  poll(`${node.label} counts ${n} open connection(s) cluster-wide`, () => clusterConnections(node), (c) => c === n);

describe('two nodes: events, presence and watchers cross nodes', () => {
  let cluster, a, b, alice, bob, aCh, bCh;
  const clients = [];

  before(async () => {
    cluster = await startCluster();
    [a, b] = cluster.nodes;
    alice = { id: uid('alice') };
    bob = { id: uid('bob') };
    await upsertUsers(a, [alice.id, bob.id]);
    // alice lives on node A, bob (connected later) on node B.
    Object.assign(alice, await connect(a, alice.id));
    clients.push(alice.client);
    const id = uid('cluster');
    aCh = alice.client.channel('messaging', id, { members: [alice.id, bob.id] });
    await aCh.watch({ presence: true });
  });
  after(async () => {
    await disconnectAll(clients);
    await cluster?.stop();
  });

  test('bob connecting and watching on B: alice on A gets presence and watching.start, both count 2', async () => {
    // B must know alice watches before bob's watch is counted there.
    await untilWatchers(b, aCh, 1);

    const online = waitFor(alice.client, 'user.presence.changed', (e) => e.user?.id === bob.id && e.user.online === true);
    Object.assign(bob, await connect(b, bob.id));
    clients.push(bob.client);
    const pres = await online;
    assert.equal(pres.user.online, true);
    assert.equal(alice.client.state.users[bob.id]?.online, true, "alice's SDK state has bob online");

    const watching = waitFor(aCh, 'user.watching.start', (e) => e.user?.id === bob.id);
    bCh = bob.client.channel('messaging', aCh.id);
    const state = await bCh.watch();
    assert.equal(state.watcher_count, 2, "B's watch reply counts alice on A");
    const ev = await watching;
    assert.equal(ev.cid, aCh.cid);
    assert.equal(ev.watcher_count, 2, 'the event from B counts watchers on both nodes');
    assert.equal(aCh.state.watcher_count, 2, 'channel.state.watcher_count on A');
    assert.equal(bCh.state.watcher_count, 2, 'channel.state.watcher_count on B');
    assert.equal(aCh.state.watchers[bob.id]?.id, bob.id);

    // And each node's REST view agrees once it has heard of the other's watcher.
    await untilWatchers(a, aCh, 2);
    await untilWatchers(b, aCh, 2);
    const members = (await aCh.query({ state: true, watch: false })).members;
    assert.equal(members.find((m) => m.user_id === bob.id)?.user?.online, true, 'A sees bob online (from B)');
  });

  test('message.new, reaction.new and typing.start made through B reach alice on A', async () => {
    assert.ok(bCh, 'needs the previous test');
    assert.equal(new URL(bob.client.baseURL).port, new URL(b.baseURL).port, "bob's REST calls go to B");

    const got = waitFor(aCh, 'message.new', (e) => e.message?.text === 'from node B');
    const own = waitFor(bCh, 'message.new', (e) => e.message?.text === 'from node B');
    const { message } = await bCh.sendMessage({ text: 'from node B' });
    const ev = await got;
    assert.equal(ev.message.id, message.id);
    assert.equal(ev.user.id, bob.id);
    assert.ok(aCh.state.messages.some((m) => m.id === message.id), "in alice's channel state");
    await own;

    const reacted = waitFor(aCh, 'reaction.new', (e) => e.reaction?.user_id === bob.id);
    await bCh.sendReaction(message.id, { type: 'like' });
    const r = await reacted;
    assert.equal(r.reaction.type, 'like');
    assert.equal(r.message.id, message.id);
    assert.equal(r.message.reaction_counts?.like, 1);

    const typing = waitFor(aCh, 'typing.start', (e) => e.user?.id === bob.id);
    await bCh.keystroke();
    assert.equal((await typing).cid, aCh.cid);
    assert.ok(aCh.state.typing[bob.id], "bob is in alice's typing state");
    const stopped = waitFor(aCh, 'typing.stop', (e) => e.user?.id === bob.id);
    await bCh.stopTyping();
    await stopped;

    // The other way round: made on A, delivered on B.
    const back = waitFor(bCh, 'message.new', (e) => e.message?.text === 'from node A');
    await aCh.sendMessage({ text: 'from node A' });
    assert.equal((await back).user.id, alice.id);
  });

  test('bob leaving B: alice on A gets watching.stop and presence offline', async () => {
    assert.ok(bCh, 'needs the first test');
    const stopped = waitFor(aCh, 'user.watching.stop', (e) => e.user?.id === bob.id);
    const offline = waitFor(alice.client, 'user.presence.changed', (e) => e.user?.id === bob.id && e.user.online === false);
    await bob.client.disconnectUser();
    assert.equal((await stopped).watcher_count, 1);
    const ev = await offline;
    assert.ok(ev.user.last_active, 'last_active is set');
    assert.equal(aCh.state.watcher_count, 1);
    await untilWatchers(a, aCh, 1);
    await untilWatchers(b, aCh, 1);
  });
});

describe('two nodes: the per-user connection cap is cluster-wide', () => {
  let cluster, a, b, carol;
  const clients = [];

  before(async () => {
    cluster = await startCluster({ env: { WARD_MAX_CONNECTIONS_PER_USER: '2' } });
    [a, b] = cluster.nodes;
    carol = uid('carol');
    await upsertUsers(a, [carol]);
  });
  after(async () => {
    await disconnectAll(clients);
    await cluster?.stop();
  });

  const open = async (node) => {
    const c = await connect(node, carol);
    clients.push(c.client);
    return c.client;
  };
  const refused = async (node) => {
    try {
      const c = await connect(node, carol);
      clients.push(c.client);
      assert.fail(`a third connection on ${node.label} was accepted`);
    } catch (err) {
      if (err.code === 'ERR_ASSERTION') throw err;
      const e = wsError(err);
      assert.equal(e.code, 71, `code 71 expected on ${node.label}, got ${err.message}`);
      assert.equal(e.StatusCode, 429);
    }
  };

  test('one connection on A and one on B: a third is refused with code 71 on either node', async () => {
    const onA = await open(a);
    await untilClusterConnections(b, 1);
    await open(b);
    await untilClusterConnections(a, 2);
    await untilClusterConnections(b, 2);

    await refused(a);
    await refused(b);

    // Closing the one on A frees a slot on B once B has heard.
    await onA.disconnectUser();
    await untilClusterConnections(b, 1);
    await open(b);
    await untilClusterConnections(a, 2);
    await refused(a);
  });
});
