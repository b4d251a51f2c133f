// Membership as the stock SDK drives it (issue 16, item 4): queryMembers, pin/archive and
// the channel list filters on them, hide/show, invites, slow mode and deleteChannels.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { serverClient, setup, uid, waitFor } from './harness.js';

describe('membership', () => {
  let env, alice, bob, carol, server;

  before(async () => {
    env = await setup(['alice', 'bob', 'carol']);
    ({ alice, bob, carol } = env.users);
    server = serverClient(env.srv);
  });
  after(async () => {
    await env?.close();
  });

  test('channel.queryMembers filters by name, role and invite status, sorts and pages', async () => {
    const ch = alice.client.channel('messaging', uid('team'), { members: [alice.id, bob.id, carol.id] });
    await ch.watch();
    const all = await ch.queryMembers({});
    assert.deepEqual(all.members.map((m) => m.user_id).sort(), [alice.id, bob.id, carol.id].sort());
    const byName = await ch.queryMembers({ name: { $autocomplete: 'bo' } });
    assert.deepEqual(byName.members.map((m) => m.user_id), [bob.id]);
    const sorted = await ch.queryMembers({}, { user_id: -1 }, { limit: 2 });
    assert.deepEqual(
      sorted.members.map((m) => m.user_id),
      [alice.id, bob.id, carol.id].sort().reverse().slice(0, 2),
    );
    const offset = await ch.queryMembers({}, [{ user_id: 1 }], { limit: 1, offset: 1 });
    assert.deepEqual(offset.members.map((m) => m.user_id), [[alice.id, bob.id, carol.id].sort()[1]]);
    const members = await ch.queryMembers({ channel_role: 'channel_member' });
    assert.equal(members.members.length, 3);
    await assert.rejects(ch.queryMembers({ name: { $regex: 'x' } }), (err) => err.code === 4);
  });

  test('channel.pin() and archive(): member.updated, membership, and the pinned/archived lists', async () => {
    const pinned = alice.client.channel('messaging', uid('pinned'), { members: [alice.id, bob.id] });
    const archived = alice.client.channel('messaging', uid('archived'), { members: [alice.id, bob.id] });
    await pinned.watch();
    await archived.watch();

    const updated = waitFor(pinned, 'member.updated', (e) => e.member?.user?.id === alice.id && !!e.member?.pinned_at);
    const member = await pinned.pin();
    assert.ok(member.pinned_at, 'pin returns the member with pinned_at');
    await updated;
    assert.ok(pinned.state.membership.pinned_at, 'the SDK keeps the membership current');

    const member2 = await archived.archive();
    assert.ok(member2.archived_at);

    const pinnedList = await alice.client.queryChannels({ pinned: true, members: { $in: [alice.id] } });
    assert.deepEqual(pinnedList.map((c) => c.cid), [pinned.cid]);
    const archivedList = await alice.client.queryChannels({ archived: true, members: { $in: [alice.id] } });
    assert.deepEqual(archivedList.map((c) => c.cid), [archived.cid]);
    const notArchived = await alice.client.queryChannels({ archived: false, members: { $in: [alice.id] } });
    assert.ok(!notArchived.some((c) => c.cid === archived.cid));
    // The ChannelList sort the React SDK offers: pinned first.
    const sorted = await alice.client.queryChannels(
      { members: { $in: [alice.id] } },
      [{ pinned_at: -1 }, { last_message_at: -1 }],
    );
    assert.equal(sorted[0].cid, pinned.cid);
    // Pinning is alice's own: bob's list has nothing pinned.
    assert.deepEqual(await bob.client.queryChannels({ pinned: true }), []);

    await pinned.unpin();
    await archived.unarchive();
    assert.deepEqual(await alice.client.queryChannels({ pinned: true }), []);
    assert.deepEqual(await alice.client.queryChannels({ archived: true }), []);
  });

  test('channel.hide() and show(): channel.hidden/visible, and a new message shows it again', async () => {
    const ch = alice.client.channel('messaging', uid('hide'), { members: [alice.id, bob.id] });
    await ch.watch();
    const hidden = waitFor(alice.client, 'channel.hidden', (e) => e.cid === ch.cid);
    await ch.hide();
    await hidden;
    let list = await alice.client.queryChannels({ cid: ch.cid });
    assert.deepEqual(list, [], 'a hidden channel leaves the list');
    list = await alice.client.queryChannels({ cid: ch.cid, hidden: true });
    assert.deepEqual(list.map((c) => c.cid), [ch.cid]);

    const visible = waitFor(alice.client, 'channel.visible', (e) => e.cid === ch.cid);
    const bobCh = bob.client.channel('messaging', ch.id);
    await bobCh.watch();
    await bobCh.sendMessage({ text: 'wake up' });
    await visible;
    list = await alice.client.queryChannels({ cid: ch.cid });
    assert.deepEqual(list.map((c) => c.cid), [ch.cid]);

    await ch.hide();
    await ch.show();
    list = await alice.client.queryChannels({ cid: ch.cid });
    assert.deepEqual(list.map((c) => c.cid), [ch.cid]);
  });

  test('inviteMembers / acceptInvite / rejectInvite: the invitee reads only after accepting', async () => {
    const ch = alice.client.channel('messaging', uid('invite'), { members: [alice.id] });
    await ch.watch();
    await ch.sendMessage({ text: 'members only' });
    const invited = waitFor(bob.client, 'notification.invited', (e) => e.cid === ch.cid);
    await ch.inviteMembers([bob.id, carol.id]);
    const note = await invited;
    assert.equal(note.member?.invited, true);

    const bobCh = bob.client.channel('messaging', ch.id);
    await assert.rejects(bobCh.query({}), (err) => err.code === 17);

    const accepted = waitFor(bob.client, 'notification.invite_accepted', (e) => e.cid === ch.cid);
    const memberUpdated = waitFor(ch, 'member.updated', (e) => e.member?.user?.id === bob.id);
    await bobCh.acceptInvite();
    await accepted;
    const ev = await memberUpdated;
    assert.ok(ev.member.invite_accepted_at);
    const state = await bobCh.watch();
    assert.equal(state.messages[0].text, 'members only');

    const carolCh = carol.client.channel('messaging', ch.id);
    const rejected = waitFor(carol.client, 'notification.invite_rejected', (e) => e.cid === ch.cid);
    await carolCh.rejectInvite();
    await rejected;
    await assert.rejects(carol.client.channel('messaging', ch.id).query({}), (err) => err.code === 17);

    const pending = await ch.queryMembers({ invite: 'rejected' });
    assert.deepEqual(pending.members.map((m) => m.user_id), [carol.id]);
  });

  test('enableSlowMode: a second message within the cooldown fails with code 60', async () => {
    const ch = alice.client.channel('messaging', uid('slow'), { members: [alice.id, bob.id] });
    await ch.watch();
    const serverCh = server.channel('messaging', ch.id);
    const cooldownSeen = waitFor(ch, 'channel.updated', (e) => e.channel?.cooldown === 30);
    await serverCh.enableSlowMode(30);
    await cooldownSeen;
    assert.equal(ch.data.cooldown, 30);
    // alice is a plain member: own_capabilities has no skip-slow-mode.
    assert.ok(!ch.data.own_capabilities.includes('skip-slow-mode'));

    await ch.sendMessage({ text: 'one' });
    await assert.rejects(ch.sendMessage({ text: 'two' }), (err) => err.code === 60 && err.status === 403);
    // A member may not change it.
    await assert.rejects(ch.disableSlowMode(), (err) => err.code === 17);
    await serverCh.disableSlowMode();
    await ch.sendMessage({ text: 'three' });
  });

  test('client.deleteChannels deletes each channel the caller may delete', async () => {
    const mine = alice.client.channel('messaging', uid('mine'), { members: [alice.id, bob.id] });
    const theirs = bob.client.channel('messaging', uid('theirs'), { members: [alice.id, bob.id] });
    await mine.create();
    await theirs.create();
    const res = await alice.client.deleteChannels([mine.cid, theirs.cid]);
    assert.equal(res.result[mine.cid], 'ok');
    assert.notEqual(res.result[theirs.cid], 'ok');
    const left = await alice.client.queryChannels({ cid: { $in: [mine.cid, theirs.cid] } });
    assert.deepEqual(left.map((c) => c.cid), [theirs.cid]);
    const byServer = await server.deleteChannels([theirs.cid], { hard_delete: true });
    assert.equal(byServer.result[theirs.cid], 'ok');
  });
});
