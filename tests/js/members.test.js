// Channel membership: addMembers / removeMembers and the events each side sees.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { barrier, collect, setup, uid, waitFor } from './harness.js';

describe('adding and removing members', () => {
  let env, alice, bob, carol, aCh;

  before(async () => {
    env = await setup(['alice', 'bob', 'carol']);
    ({ alice, bob, carol } = env.users);
    aCh = alice.client.channel('messaging', uid('club'), { members: [alice.id, bob.id], name: 'Club' });
    await aCh.watch();
    await bob.client.channel('messaging', aCh.id).watch();
  });
  after(async () => {
    await env?.close();
  });

  test('addMembers: member.added to watchers, notification.added_to_channel to the new member', async () => {
    const bCh = bob.client.activeChannels[aCh.cid];
    const aliceSees = waitFor(aCh, 'member.added', (e) => e.member?.user?.id === carol.id);
    const bobSees = waitFor(bCh, 'member.added', (e) => e.member?.user?.id === carol.id);
    const carolNote = waitFor(carol.client, 'notification.added_to_channel', (e) => e.cid === aCh.cid);

    const res = await aCh.addMembers([carol.id]);
    assert.deepEqual(res.members.map((m) => m.user.id).sort(), [alice.id, bob.id, carol.id].sort());

    const ev = await aliceSees;
    assert.equal(ev.cid, aCh.cid);
    assert.equal(ev.member.user_id, carol.id);
    assert.equal(ev.member.channel_role, 'channel_member');
    assert.ok(aCh.state.members[carol.id], "carol is in alice's member state");
    await bobSees;
    assert.ok(bCh.state.members[carol.id], "carol is in bob's member state");

    const note = await carolNote;
    assert.equal(note.channel?.cid, aCh.cid);
    assert.equal(note.channel?.name, 'Club');
    assert.equal(note.member?.user?.id ?? note.member?.user_id, carol.id);

    // Carol can now watch the channel, see its history and take part.
    const cCh = carol.client.channel('messaging', aCh.id);
    const state = await cCh.watch();
    assert.equal(state.membership?.user?.id, carol.id);
    assert.equal(state.channel.member_count, 3);
    const got = waitFor(aCh, 'message.new', (e) => e.user?.id === carol.id);
    await cCh.sendMessage({ text: 'thanks for having me' });
    assert.equal((await got).message.text, 'thanks for having me');
  });

  test('removeMembers: member.removed keyed by user, notification.removed_from_channel to the removed', async () => {
    const cCh = carol.client.activeChannels[aCh.cid];
    assert.ok(cCh, 'carol is watching');
    const aliceSees = waitFor(aCh, 'member.removed', (e) => e.user?.id === carol.id);
    const carolNote = waitFor(carol.client, 'notification.removed_from_channel', (e) => e.cid === aCh.cid);

    const res = await aCh.removeMembers([carol.id]);
    assert.deepEqual(res.members.map((m) => m.user.id).sort(), [alice.id, bob.id].sort());

    const ev = await aliceSees;
    assert.equal(ev.cid, aCh.cid);
    assert.equal(aCh.state.members[carol.id], undefined, "carol left alice's member state");
    await carolNote;

    // Carol no longer receives the channel's messages.
    const stray = collect(carol.client, 'message.new', (e) => e.cid === aCh.cid);
    const bobGets = waitFor(bob.client, 'message.new', (e) => e.message?.text === 'after carol left');
    await aCh.sendMessage({ text: 'after carol left' });
    await bobGets;
    // Anything queued for carol by that send is delivered before her barrier echo.
    await barrier(carol.client);
    assert.deepEqual(stray.stop(), [], 'no message.new for a removed member');

    // ...and cannot read it any more.
    await assert.rejects(carol.client.channel('messaging', aCh.id).query({}), (err) => err.code === 17);
    const visible = await carol.client.queryChannels({ cid: aCh.cid });
    assert.deepEqual(visible, []);
  });

  test('a member may leave on their own; others may not remove members', async () => {
    const bCh = bob.client.activeChannels[aCh.cid];
    await assert.rejects(bCh.addMembers([carol.id]), (err) => err.code === 17, 'a plain member cannot add');
    const left = waitFor(aCh, 'member.removed', (e) => e.user?.id === bob.id);
    await bCh.removeMembers([bob.id]);
    await left;
    assert.equal(aCh.state.members[bob.id], undefined);
  });

  test('adding an unknown user is an input error', async () => {
    await assert.rejects(aCh.addMembers([uid('ghost')]), (err) => err.code === 4);
  });
});
