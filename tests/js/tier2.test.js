// Issue 16 item 8 through the real SDK: polls (createPoll, a message with poll_id,
// castPollVote and its events), drafts (channel.createDraft / getDraft / deleteDraft,
// queryDrafts), reminders (createReminder, queryReminders), user groups (server-side
// createUserGroup, user-side queryUserGroups / searchUserGroups) and client.sync.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { serverClient, setup, uid, waitFor } from './harness.js';

describe('tier 2: polls, drafts, reminders, user groups, sync', () => {
  let env, alice, bob, aCh, bCh;

  before(async () => {
    env = await setup(['alice', 'bob']);
    ({ alice, bob } = env.users);
    const id = uid('tier2');
    aCh = alice.client.channel('messaging', id, { members: [alice.id, bob.id] });
    await aCh.watch();
    bCh = bob.client.channel('messaging', id);
    await bCh.watch();
  });
  after(async () => {
    await env?.close();
  });

  test('a poll is created, sent, voted on, and the votes reach the watchers', async () => {
    assert.equal(aCh.getConfig()?.polls, true);
    assert.ok(aCh.data.own_capabilities.includes('send-poll'));
    assert.ok(bCh.data.own_capabilities.includes('cast-poll-vote'));
    const { poll } = await alice.client.createPoll({
      name: 'Which day?',
      options: [{ text: 'Monday' }, { text: 'Tuesday' }],
      enforce_unique_vote: true,
    });
    assert.equal(poll.name, 'Which day?');
    assert.equal(poll.options.length, 2);
    const arrived = waitFor(bCh, 'message.new', (e) => e.message?.poll_id === poll.id);
    const { message } = await aCh.sendMessage({ text: 'vote please', poll_id: poll.id });
    assert.equal(message.poll?.id, poll.id);
    const got = await arrived;
    assert.equal(got.message.poll.name, 'Which day?');

    const [monday, tuesday] = poll.options;
    const casted = waitFor(aCh, 'poll.vote_casted', (e) => e.poll?.id === poll.id);
    const { vote } = await bob.client.castPollVote(message.id, poll.id, { option_id: monday.id });
    assert.equal(vote.option_id, monday.id);
    const ev = await casted;
    assert.equal(ev.poll.vote_counts_by_option[monday.id], 1);
    assert.equal(ev.poll_vote.user_id, bob.id);

    const changed = waitFor(aCh, 'poll.vote_changed', (e) => e.poll?.id === poll.id);
    await bob.client.castPollVote(message.id, poll.id, { option_id: tuesday.id });
    const ch = await changed;
    assert.deepEqual(ch.poll.vote_counts_by_option, { [tuesday.id]: 1 });

    const { votes } = await alice.client.queryPollVotes(poll.id, { option_id: tuesday.id });
    assert.equal(votes.length, 1);
    assert.equal(votes[0].user_id, bob.id);

    const closed = waitFor(bCh, 'poll.closed', (e) => e.poll?.id === poll.id);
    await alice.client.closePoll(poll.id);
    assert.equal((await closed).poll.is_closed, true);
    await assert.rejects(
      bob.client.castPollVote(message.id, poll.id, { option_id: monday.id }),
      (err) => err.status === 400,
    );
    const { polls } = await alice.client.queryPolls({ id: poll.id });
    assert.equal(polls.length, 1);
  });

  test('drafts follow the user and reach their own connections', async () => {
    const updated = waitFor(alice.client, 'draft.updated', (e) => e.draft?.channel_cid === aCh.cid);
    const { draft } = await aCh.createDraft({ text: 'unfinished' });
    assert.equal(draft.message.text, 'unfinished');
    assert.equal((await updated).draft.message.text, 'unfinished');
    const again = await aCh.getDraft();
    assert.equal(again.draft.message.text, 'unfinished');
    const { drafts } = await alice.client.queryDrafts({ filter: { channel_cid: aCh.cid } });
    assert.equal(drafts.length, 1);
    const deleted = waitFor(alice.client, 'draft.deleted', (e) => e.draft?.channel_cid === aCh.cid);
    await aCh.deleteDraft();
    await deleted;
    await assert.rejects(aCh.getDraft(), (err) => err.status === 404);
  });

  test('reminders are created, queried, and announced to their owner', async () => {
    const { message } = await aCh.sendMessage({ text: 'remind me about this' });
    const created = waitFor(bob.client, 'reminder.created', (e) => e.reminder?.message_id === message.id);
    const remindAt = new Date(Date.now() + 3600_000).toISOString();
    const { reminder } = await bob.client.createReminder({ messageId: message.id, remind_at: remindAt });
    assert.equal(reminder.message_id, message.id);
    assert.equal(reminder.channel_cid, aCh.cid);
    await created;
    const { reminders } = await bob.client.queryReminders({ filter: { channel_cid: aCh.cid } });
    assert.deepEqual(reminders.map((r) => r.message_id), [message.id]);
    assert.equal(reminders[0].message.text, 'remind me about this');
    const due = waitFor(bob.client, 'notification.reminder_due', (e) => e.reminder?.message_id === message.id);
    await bob.client.updateReminder({ messageId: message.id, remind_at: new Date(Date.now() + 500).toISOString() });
    await due;
    await bob.client.deleteReminder(message.id);
    assert.equal((await bob.client.queryReminders()).reminders.length, 0);
  });

  test('user groups: admins (the API secret) manage, users read and search', async () => {
    const admin = serverClient(env.srv);
    const { user_group } = await admin.createUserGroup({ name: 'Night shift', member_ids: [alice.id, bob.id] });
    assert.equal(user_group.members.length, 2);
    await assert.rejects(
      bob.client.createUserGroup({ name: 'Not allowed' }),
      (err) => err.status === 403,
    );
    const listed = await bob.client.queryUserGroups();
    assert.ok(listed.user_groups.some((g) => g.id === user_group.id));
    const found = await bob.client.searchUserGroups({ query: 'night' });
    assert.deepEqual(found.user_groups.map((g) => g.id), [user_group.id]);
    const one = await bob.client.getUserGroup(user_group.id);
    assert.equal(one.user_group.name, 'Night shift');
    await admin.removeUserGroupMembers(user_group.id, { member_ids: [bob.id] });
    assert.equal((await admin.getUserGroup(user_group.id)).user_group.members.length, 1);
    await admin.deleteUserGroup(user_group.id);
    await assert.rejects(bob.client.getUserGroup(user_group.id), (err) => err.status === 404);
  });

  test('sync returns the messages missed since last_sync_at', async () => {
    const since = new Date().toISOString();
    const seen = waitFor(bCh, 'message.new', (e) => e.message?.text === 'while you were away');
    await aCh.sendMessage({ text: 'while you were away' });
    await seen;
    const { events } = await bob.client.sync([bCh.cid], since);
    const texts = events.filter((e) => e.type === 'message.new').map((e) => e.message.text);
    assert.deepEqual(texts, ['while you were away']);
    const hidden = await bob.client.sync(['messaging:nope-' + uid('x')], since, { with_inaccessible_cids: true });
    assert.equal(hidden.inaccessible_cids.length, 1);
  });
});
