// Channel lifecycle and other SDK paths: distinct channels, updates, truncation, deletion,
// stop-watching, pagination, pins, quotes, mentions, presence, heartbeats, dev tokens.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { barrier, collect, connect, newClient, serverClient, setup, startServer, uid, upsertUsers, waitFor, wsError } from './harness.js';

describe('channel lifecycle', () => {
  let env, alice, bob, carol;

  before(async () => {
    env = await setup(['alice', 'bob', 'carol']);
    ({ alice, bob, carol } = env.users);
  });
  after(async () => {
    await env?.close();
  });

  const pair = async (type = 'messaging', data = {}) => {
    const id = uid('ch');
    const a = alice.client.channel(type, id, { members: [alice.id, bob.id], ...data });
    await a.watch();
    const b = bob.client.channel(type, id);
    await b.watch();
    return [a, b];
  };

  test('distinct channels (no id) resolve to the same channel for the same members', async () => {
    const a = alice.client.channel('messaging', { members: [alice.id, carol.id] });
    const stateA = await a.watch();
    assert.ok(a.id, 'the server assigned an id');
    assert.ok(a.id.startsWith('!members-'));
    assert.equal(stateA.channel.cid, a.cid);
    const c = carol.client.channel('messaging', { members: [carol.id, alice.id] });
    await c.watch();
    assert.equal(c.cid, a.cid, 'member order does not matter');
    const got = waitFor(a, 'message.new', (e) => e.message?.text === 'hi from carol');
    await c.sendMessage({ text: 'hi from carol' });
    await got;
  });

  test('update and updatePartial: channel.updated reaches watchers, data is flattened', async () => {
    const [a, b] = await pair('messaging', { name: 'Before', color: 'red' });
    const upd = waitFor(b, 'channel.updated', (e) => e.channel?.name === 'After');
    const res = await a.update({ name: 'After', color: 'green' }, { text: 'renamed the channel' });
    assert.equal(res.channel.name, 'After');
    const ev = await upd;
    assert.equal(ev.channel.color, 'green');
    assert.equal(b.data.name, 'After', "bob's channel.data follows");
    assert.ok(Array.isArray(b.data.own_capabilities) && b.data.own_capabilities.length > 0, 'own_capabilities are kept');

    const part = waitFor(b, 'channel.updated', (e) => e.channel?.topic === 'partial');
    const res2 = await a.updatePartial({ set: { topic: 'partial' }, unset: ['color'] });
    assert.equal(res2.channel.topic, 'partial');
    assert.equal(res2.channel.color, undefined);
    assert.equal(a.data.topic, 'partial');
    await part;
    assert.equal(b.data.color, undefined);
    assert.equal(b.data.name, 'After');

    await assert.rejects(b.update({ name: 'bob was here' }), (err) => err.code === 17, 'a plain member cannot update');
  });

  test('truncate: channel.truncated empties state', async () => {
    const [a, b] = await pair();
    for (const text of ['t1', 't2']) {
      const got = waitFor(b, 'message.new', (e) => e.message?.text === text);
      await a.sendMessage({ text });
      await got;
    }
    assert.equal(b.state.messages.length, 2);
    const trunc = waitFor(b, 'channel.truncated');
    await a.truncate();
    const ev = await trunc;
    assert.ok(ev.channel?.truncated_at, 'the event carries truncated_at');
    assert.equal(b.state.messages.length, 0, "bob's state was truncated");
    const fresh = await bob.client.channel('messaging', a.id).query({});
    assert.deepEqual(fresh.messages, []);
  });

  test('delete: channel.deleted to watchers; the channel is gone', async () => {
    const [a, b] = await pair();
    const del = waitFor(bob.client, 'channel.deleted', (e) => e.cid === a.cid);
    await a.delete();
    await del;
    assert.equal(bob.client.activeChannels[b.cid], undefined, 'the SDK dropped the channel');
    await assert.rejects(alice.client.channel('messaging', a.id).query({}), (err) => err.code === 16);
    assert.deepEqual(await alice.client.queryChannels({ cid: a.cid }), []);
  });

  test('stopWatching: no more channel events for that connection', async () => {
    const [a, b] = await pair();
    const stop = waitFor(a, 'user.watching.stop', (e) => e.user?.id === bob.id);
    await b.stopWatching();
    assert.equal((await stop).watcher_count, 1);
    const stray = collect(bob.client, 'message.new', (e) => e.cid === a.cid);
    const note = waitFor(bob.client, 'notification.message_new', (e) => e.cid === a.cid);
    await a.sendMessage({ text: 'nobody from bob is watching' });
    await note; // a member who stopped watching is notified instead
    await barrier(bob.client);
    assert.deepEqual(stray.stop(), []);
  });

  test('message pagination with id_lt loads older pages in order', async () => {
    const [a] = await pair();
    const sent = [];
    for (let i = 0; i < 7; i++) sent.push((await a.sendMessage({ text: `p${i}` })).message);
    const fresh = alice.client.channel('messaging', a.id);
    const first = await fresh.query({ messages: { limit: 3 } });
    assert.deepEqual(first.messages.map((m) => m.text), ['p4', 'p5', 'p6']);
    const older = await fresh.query({ messages: { limit: 3, id_lt: first.messages[0].id } });
    assert.deepEqual(older.messages.map((m) => m.text), ['p1', 'p2', 'p3']);
    const newer = await fresh.query({ messages: { limit: 2, id_gt: sent[1].id } });
    assert.deepEqual(newer.messages.map((m) => m.text), ['p2', 'p3']);
    const around = await fresh.query({ messages: { limit: 3, id_around: sent[3].id } });
    assert.deepEqual(around.messages.map((m) => m.text), ['p2', 'p3', 'p4']);
  });

  test('pinned, quoted and mentioning messages', async () => {
    const [a, b] = await pair();
    const base = (await a.sendMessage({ text: 'quote me' })).message;
    const pinned = waitFor(b, 'message.updated', (e) => e.message?.id === base.id && e.message.pinned);
    await alice.client.pinMessage(base);
    const ev = await pinned;
    assert.equal(ev.message.pinned_by?.id, alice.id);
    assert.ok(ev.message.pinned_at);
    assert.ok(b.state.pinnedMessages.some((m) => m.id === base.id), "bob's pinned list has it");
    const q = await bob.client.channel('messaging', a.id).query({});
    assert.deepEqual(q.pinned_messages.map((m) => m.id), [base.id]);

    const got = waitFor(a, 'message.new', (e) => e.message?.quoted_message_id === base.id);
    const reply = (await b.sendMessage({ text: `@${alice.id} agreed`, quoted_message_id: base.id, mentioned_users: [alice.id] })).message;
    const m = (await got).message;
    assert.equal(m.id, reply.id);
    assert.equal(m.quoted_message?.id, base.id);
    assert.equal(m.quoted_message?.text, 'quote me');
    assert.deepEqual(m.mentioned_users.map((u) => u.id), [alice.id]);
    assert.equal(m.mentioned_users[0].name, 'alice', 'mentioned users are full user objects');

    const unpinned = waitFor(b, 'message.updated', (e) => e.message?.id === base.id && !e.message.pinned);
    await alice.client.unpinMessage(base);
    await unpinned;
    assert.ok(!b.state.pinnedMessages.some((mm) => mm.id === base.id));
  });

  test('getReplies pages the way the SDK Thread does (sort created_at -1, ascending pages)', async () => {
    const [a] = await pair();
    const parent = (await a.sendMessage({ text: 'root' })).message;
    const r = [];
    for (let i = 0; i < 5; i++) r.push((await a.sendMessage({ text: `r${i}`, parent_id: parent.id })).message);
    const sort = [{ created_at: -1 }]; // Thread's DEFAULT_SORT
    const texts = (res) => res.messages.map((m) => m.text);
    // Thread.loadPrevPage unshifts the page and takes page[0] as the next cursor, so pages
    // must be the newest `limit` before the cursor, in ascending order.
    const latest = await a.getReplies(parent.id, { limit: 2 }, sort);
    assert.deepEqual(texts(latest), ['r3', 'r4']);
    const prev = await a.getReplies(parent.id, { limit: 2, id_lt: latest.messages[0].id }, sort);
    assert.deepEqual(texts(prev), ['r1', 'r2']);
    const first = await a.getReplies(parent.id, { limit: 2, id_lt: prev.messages[0].id }, sort);
    assert.deepEqual(texts(first), ['r0']);
    // Thread.loadNextPage pushes the page and takes its last item as the cursor.
    const next = await a.getReplies(parent.id, { limit: 2, id_gt: r[0].id }, sort);
    assert.deepEqual(texts(next), ['r1', 'r2']);
  });

  test('a silent message does not count as unread', async () => {
    const [a, b] = await pair();
    const got = waitFor(b, 'message.new', (e) => e.message?.text === 'shh');
    await a.sendMessage({ text: 'shh', silent: true });
    assert.equal((await got).message.silent, true);
    assert.equal((await bob.client.getUnreadCount()).channels.find((c) => c.channel_id === a.cid)?.unread_count ?? 0, 0);
  });

  test('livestream channels are public: anyone can watch and post', async () => {
    const id = uid('live');
    const a = alice.client.channel('livestream', id);
    await a.watch();
    const c = carol.client.channel('livestream', id);
    const state = await c.watch();
    assert.ok(state.channel.own_capabilities.includes('send-message'));
    const got = waitFor(a, 'message.new', (e) => e.user?.id === carol.id);
    await c.sendMessage({ text: 'hello stream' });
    await got;
  });

  test('partialUpdateUser: the change reaches the own client as user.updated', async () => {
    const upd = waitFor(carol.client, 'user.updated', (e) => e.user?.id === carol.id && e.user.nickname === 'cc');
    const res = await carol.client.partialUpdateUser({ id: carol.id, set: { nickname: 'cc' } });
    assert.equal(res.users[carol.id].nickname, 'cc');
    await upd;
    assert.equal(carol.client.user.nickname, 'cc', 'client.user follows');
    assert.ok(Array.isArray(carol.client.mutedUsers));
    await assert.rejects(carol.client.partialUpdateUser({ id: alice.id, set: { nickname: 'x' } }), (err) => err.code === 17);
  });
});

describe('presence, heartbeat and multiple connections', () => {
  let env, alice, bob;

  before(async () => {
    env = await setup(['alice', 'bob']);
    ({ alice, bob } = env.users);
  });
  after(async () => {
    await env?.close();
  });

  test('queryUsers with presence: user.presence.changed on connect and disconnect', async () => {
    const dave = uid('dave');
    await upsertUsers(env.srv, [dave]);
    const { users } = await alice.client.queryUsers({ id: { $in: [dave] } }, {}, { presence: true });
    assert.equal(users[0].online, false);

    const online = waitFor(alice.client, 'user.presence.changed', (e) => e.user?.id === dave && e.user.online === true);
    const d = await connect(env.srv, dave);
    await online;
    assert.equal(alice.client.state.users[dave]?.online, true);

    const offline = waitFor(alice.client, 'user.presence.changed', (e) => e.user?.id === dave && e.user.online === false);
    await d.client.disconnectUser();
    const ev = await offline;
    assert.ok(ev.user.last_active, 'last_active is set when going offline');
  });

  test('the server answers the SDK heartbeat with health.check', async () => {
    const conn = alice.client.wsConnection;
    const hc = waitFor(alice.client, 'health.check', (e) => !e.me);
    conn.ws.send(JSON.stringify([{ type: 'health.check', client_id: alice.client.clientID }]));
    const ev = await hc;
    assert.equal(ev.connection_id, alice.client._getConnectionID());
  });

  test(
    'an idle connection stays up past the 35 s watchdog on the SDK\'s own pings (WARD_JS_SLOW=1)',
    { skip: process.env.WARD_JS_SLOW !== '1' && 'slow (~55 s): set WARD_JS_SLOW=1', timeout: 90_000 },
    async () => {
      const idle = await connect(env.srv, uid('idle'));
      try {
        const connId = idle.client._getConnectionID();
        const drops = collect(idle.client, 'connection.changed', (e) => e.online === false);
        // The SDK pings 25 s after each health.check it receives; the server's answer is the
        // next health.check. Two rounds take the connection well past the 35 s watchdog.
        await waitFor(idle.client, 'health.check', () => true, 40_000);
        await waitFor(idle.client, 'health.check', () => true, 40_000);
        assert.deepEqual(drops.stop(), [], 'the connection never went unhealthy');
        assert.equal(idle.client._getConnectionID(), connId, 'no reconnect happened');
      } finally {
        await idle.client.disconnectUser();
      }
    },
  );

  test('two connections of one user both receive channel events; watcher_count counts users', async () => {
    const id = uid('tabs');
    const a = alice.client.channel('messaging', id, { members: [alice.id, bob.id] });
    await a.watch();
    const tab2 = await connect(env.srv, bob.id);
    try {
      const b1 = bob.client.channel('messaging', id);
      const b2 = tab2.client.channel('messaging', id);
      await b1.watch();
      const s2 = await b2.watch();
      assert.equal(s2.watcher_count, 2, 'two users, three connections');
      const g1 = waitFor(b1, 'message.new', (e) => e.message?.text === 'to both tabs');
      const g2 = waitFor(b2, 'message.new', (e) => e.message?.text === 'to both tabs');
      await a.sendMessage({ text: 'to both tabs' });
      await Promise.all([g1, g2]);

      // A read on one tab reaches the other as message.read / notification.mark_read.
      const other = waitFor(tab2.client, 'notification.mark_read', (e) => e.cid === a.cid);
      await b1.markRead();
      await other;
      assert.equal(b2.countUnread(), 0);
    } finally {
      await tab2.client.disconnectUser();
    }
  });

  test('anonymous connections are refused', async () => {
    const anon = newClient(env.srv);
    await assert.rejects(anon.connectAnonymousUser(), (err) => wsError(err).code === 2 || /anonymous/i.test(err.message));
  });

  test('dev tokens are refused unless WARD_DEV_TOKENS=true', async () => {
    const id = uid('dev');
    const c = newClient(env.srv);
    await assert.rejects(c.connectUser({ id }, c.devToken(id)), (err) => wsError(err).code === 43);

    const dev = await startServer({ env: { WARD_DEV_TOKENS: 'true' } });
    const d = newClient(dev);
    try {
      const res = await d.connectUser({ id, name: 'Dev User' }, d.devToken(id));
      assert.equal(res.me.id, id);
      assert.equal(res.me.name, 'Dev User');
    } finally {
      await d.disconnectUser();
      await dev.stop();
    }
  });

  test('a server client can create channels and query as a user', async () => {
    const server = serverClient(env.srv);
    const id = uid('srv');
    const ch = server.channel('team', id, { members: [alice.id, bob.id], created_by_id: alice.id, name: 'Made by server' });
    const state = await ch.create();
    assert.equal(state.channel.created_by.id, alice.id);
    const res = await alice.client.queryChannels({ cid: ch.cid });
    assert.equal(res[0]?.data?.name, 'Made by server');
  });
});
