// queryChannels filters and sorts, and message search, with channels the caller is and is
// not a member of.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { setup, uid, waitFor } from './harness.js';

describe('queryChannels and search', () => {
  let env, alice, bob, carol;
  // c1: messaging alice+bob, red, priority 1
  // c2: messaging alice+carol, blue, priority 2
  // c3: team alice+bob+carol, red, priority 3
  // c4: messaging bob+carol (alice is not a member), red, priority 4
  const ch = {};
  const tag = uid('tag');

  before(async () => {
    env = await setup(['alice', 'bob', 'carol']);
    ({ alice, bob, carol } = env.users);
    const specs = {
      c1: { type: 'messaging', owner: alice, members: [alice, bob], color: 'red', priority: 1 },
      c2: { type: 'messaging', owner: alice, members: [alice, carol], color: 'blue', priority: 2 },
      c3: { type: 'team', owner: alice, members: [alice, bob, carol], color: 'red', priority: 3 },
      c4: { type: 'messaging', owner: bob, members: [bob, carol], color: 'red', priority: 4 },
    };
    for (const [key, s] of Object.entries(specs)) {
      const c = s.owner.client.channel(s.type, uid(key), {
        members: s.members.map((u) => u.id),
        color: s.color,
        priority: s.priority,
        tag,
        name: `Channel ${key}`,
      });
      await c.create();
      ch[key] = c;
    }
    // Activity order (oldest first): c2, c4, c1, c3 — so by last_message_at desc: c3, c1, c4, c2.
    await ch.c2.sendMessage({ text: 'a ripe banana in c2' });
    await ch.c4.sendMessage({ text: 'secret banana in c4' });
    await ch.c1.sendMessage({ text: 'banana bread in c1' });
    await ch.c3.sendMessage({ text: 'banana split in c3' });
    await ch.c3.sendMessage({ text: 'apple pie in c3' });
    await ch.c3.sendMessage({ text: 'learning c++ & rust, 100% + more' });
  });
  after(async () => {
    await env?.close();
  });

  const ids = (channels) => channels.map((c) => c.cid);

  test('$eq on type plus members $in, default sort is most recently updated first', async () => {
    const res = await alice.client.queryChannels({ type: 'messaging', members: { $in: [alice.id] }, tag });
    assert.deepEqual(ids(res), [ch.c1.cid, ch.c2.cid]);
    const first = res[0];
    assert.equal(first.data.color, 'red', 'custom fields arrive flattened in channel.data');
    assert.equal(first.data.name, 'Channel c1');
    assert.ok(first.state.messages.some((m) => m.text === 'banana bread in c1'), 'state comes with the channel');
    assert.ok(first.initialized);
  });

  test('sort by last_message_at descending', async () => {
    const res = await alice.client.queryChannels({ tag }, { last_message_at: -1 });
    assert.deepEqual(ids(res), [ch.c3.cid, ch.c1.cid, ch.c2.cid], 'c4 is not visible to alice');
  });

  test('sort by a custom field, both directions, plus limit and offset', async () => {
    const asc = await alice.client.queryChannels({ tag }, [{ priority: 1 }]);
    assert.deepEqual(ids(asc), [ch.c1.cid, ch.c2.cid, ch.c3.cid]);
    const desc = await alice.client.queryChannels({ tag }, { priority: -1 });
    assert.deepEqual(ids(desc), [ch.c3.cid, ch.c2.cid, ch.c1.cid]);
    const page = await alice.client.queryChannels({ tag }, { priority: -1 }, { limit: 1, offset: 1 });
    assert.deepEqual(ids(page), [ch.c2.cid]);
  });

  test('$in on cid and on a custom field', async () => {
    const byCid = await alice.client.queryChannels({ cid: { $in: [ch.c1.cid, ch.c3.cid, ch.c4.cid] } }, { priority: 1 });
    assert.deepEqual(ids(byCid), [ch.c1.cid, ch.c3.cid], 'a channel alice is not in stays hidden even by cid');
    const byColor = await alice.client.queryChannels({ tag, color: { $in: ['blue', 'green'] } });
    assert.deepEqual(ids(byColor), [ch.c2.cid]);
  });

  test('$eq on a custom field', async () => {
    const res = await alice.client.queryChannels({ tag, color: { $eq: 'red' } }, { priority: 1 });
    assert.deepEqual(ids(res), [ch.c1.cid, ch.c3.cid]);
    const plain = await carol.client.queryChannels({ tag, color: 'red' }, { priority: 1 });
    assert.deepEqual(ids(plain), [ch.c3.cid, ch.c4.cid], 'carol sees the red channels she is in');
  });

  test('$and and $or', async () => {
    const and = await alice.client.queryChannels({ $and: [{ tag }, { color: 'red' }, { type: 'team' }] });
    assert.deepEqual(ids(and), [ch.c3.cid]);
    const or = await alice.client.queryChannels({ tag, $or: [{ color: 'blue' }, { type: 'team' }] }, { priority: 1 });
    assert.deepEqual(ids(or), [ch.c2.cid, ch.c3.cid]);
    const nested = await bob.client.queryChannels(
      { $and: [{ tag }, { $or: [{ priority: { $gte: 3 } }, { members: { $in: [alice.id] } }] }] },
      { priority: 1 },
    );
    assert.deepEqual(ids(nested), [ch.c1.cid, ch.c3.cid, ch.c4.cid]);
  });

  test('members filter: $in another user, and exact $eq', async () => {
    const withBob = await alice.client.queryChannels({ tag, members: { $in: [bob.id] } }, { priority: 1 });
    assert.deepEqual(ids(withBob), [ch.c1.cid, ch.c3.cid], "bob's channel without alice (c4) is not returned");
    const exact = await alice.client.queryChannels({ tag, members: { $eq: [bob.id, alice.id] } });
    assert.deepEqual(ids(exact), [ch.c1.cid]);
  });

  test('watch through queryChannels delivers events', async () => {
    const [c1] = await bob.client.queryChannels({ cid: ch.c1.cid }, {}, { watch: true, state: true });
    const got = waitFor(c1, 'message.new', (e) => e.message?.text === 'seen via queryChannels');
    await ch.c1.sendMessage({ text: 'seen via queryChannels' });
    await got;
    assert.ok(c1.state.messages.some((m) => m.text === 'seen via queryChannels'));
  });

  test('a bad filter is an input error (code 4)', async () => {
    await assert.rejects(alice.client.queryChannels({ color: { $regex: 'r.*' } }), (err) => err.code === 4);
  });

  test('search finds messages in channels the caller is a member of', async () => {
    const res = await alice.client.search({ members: { $in: [alice.id] }, tag }, 'banana');
    const texts = res.results.map((r) => r.message.text).sort();
    assert.deepEqual(texts, ['a ripe banana in c2', 'banana bread in c1', 'banana split in c3']);
    for (const r of res.results) {
      assert.ok(r.message.channel?.cid, 'each result carries its channel');
      assert.ok(r.message.user?.id);
      assert.equal(r.message.cid, r.message.channel.cid);
    }
    assert.ok(!texts.some((t) => t.includes('c4')), 'nothing from a channel alice is not in');
  });

  test("a non-member does not find a channel's messages", async () => {
    const direct = await alice.client.search({ cid: ch.c4.cid }, 'banana');
    assert.deepEqual(direct.results, [], 'naming the channel does not help');
    const viaMembers = await alice.client.search({ members: { $in: [bob.id] } }, 'secret');
    assert.deepEqual(viaMembers.results, []);
    // Bob, a member, does find it.
    const bobRes = await bob.client.search({ members: { $in: [bob.id] } }, 'secret');
    assert.deepEqual(bobRes.results.map((r) => r.message.text), ['secret banana in c4']);
  });

  test('search with message filters, channel filters, limit and next', async () => {
    const res = await alice.client.search({ tag, color: 'red' }, 'banana');
    assert.deepEqual(res.results.map((r) => r.message.text).sort(), ['banana bread in c1', 'banana split in c3']);

    const auto = await alice.client.search({ tag }, { text: { $autocomplete: 'apple' } });
    assert.deepEqual(auto.results.map((r) => r.message.text), ['apple pie in c3']);

    const p1 = await alice.client.search({ tag }, 'banana', { limit: 2 });
    assert.equal(p1.results.length, 2);
    assert.ok(p1.next, 'a next cursor when there are more');
    const p2 = await alice.client.search({ tag }, 'banana', { limit: 2, next: p1.next });
    assert.equal(p2.results.length, 1);
    const all = [...p1.results, ...p2.results].map((r) => r.message.id);
    assert.equal(new Set(all).size, 3, 'pages do not overlap');

    const chan = await ch.c3.search('split');
    assert.deepEqual(chan.results.map((r) => r.message.text), ['banana split in c3']);
  });

  test('search text with URL-special characters survives the GET payload encoding', async () => {
    const res = await alice.client.search({ tag }, 'c++ & rust, 100%');
    assert.deepEqual(res.results.map((r) => r.message.text), ['learning c++ & rust, 100% + more']);
  });

  test('search sort by created_at', async () => {
    const asc = await alice.client.search({ tag }, 'banana', { sort: [{ created_at: 1 }] });
    assert.deepEqual(asc.results.map((r) => r.message.text), ['a ripe banana in c2', 'banana bread in c1', 'banana split in c3']);
    const desc = await alice.client.search({ tag }, 'banana', { sort: { created_at: -1 } });
    assert.deepEqual(desc.results.map((r) => r.message.text), ['banana split in c3', 'banana bread in c1', 'a ripe banana in c2']);
  });
});
