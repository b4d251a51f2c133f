// GDPR through the stream-chat server-side client: deleteUsers returns a task that
// getTask follows to completion, the deleted user is gone, and a legal hold makes the task
// fail without touching the user.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { poll, serverClient, startServer, uid, upsertUsers } from './harness.js';

describe('gdpr tasks', () => {
  let srv;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv?.stop();
  });

  async function finished(server, taskId) {
    return poll(
      `task ${taskId} finishes`,
      () => server.getTask(taskId),
      (t) => t.status === 'completed' || t.status === 'failed',
      { timeoutMs: 30_000, intervalMs: 50 },
    );
  }

  test('deleteUsers runs as a task that getTask follows', async () => {
    const [a, b] = [uid('leaver'), uid('stayer')];
    await upsertUsers(srv, [{ id: a, name: 'Leaver' }, { id: b, name: 'Stayer' }]);
    const server = serverClient(srv);
    const channel = server.channel('messaging', uid('room'), { members: [a, b], created_by_id: a });
    await channel.create();
    await channel.sendMessage({ text: 'bye', user_id: a });

    const res = await server.deleteUsers([a], { user: 'hard', messages: 'hard' });
    assert.equal(typeof res.task_id, 'string');
    const task = await finished(server, res.task_id);
    assert.equal(task.status, 'completed', JSON.stringify(task));
    assert.equal(task.result.deleted_users, 1);
    const { users } = await server.queryUsers({ id: { $in: [a, b] } });
    assert.deepEqual(users.map((u) => u.id), [b]);
  });

  test('a legal hold makes the task fail and keeps the user', async () => {
    const held = uid('held');
    await upsertUsers(srv, [{ id: held }]);
    const server = serverClient(srv);
    await server.post(`${server.baseURL}/compliance/holds`, { scope: 'user', target: held, reason: 'litigation' });
    const res = await server.deleteUsers([held], { user: 'hard' });
    const task = await finished(server, res.task_id);
    assert.equal(task.status, 'failed');
    assert.ok(task.error.description.length > 0);
    const { users } = await server.queryUsers({ id: held });
    assert.equal(users.length, 1);
  });

  test('exportUsers runs as a task whose signed URL downloads the ZIP', async () => {
    const [a, b] = [uid('subject'), uid('other')];
    await upsertUsers(srv, [{ id: a, name: 'Subject' }, { id: b }]);
    const server = serverClient(srv);
    const channel = server.channel('messaging', uid('room'), { members: [a, b], created_by_id: a });
    await channel.create();
    await channel.sendMessage({ text: 'mine', user_id: a });
    await channel.sendMessage({ text: 'theirs', user_id: b });

    const res = await server.exportUsers({ user_ids: [a] });
    const task = await finished(server, res.task_id);
    assert.equal(task.status, 'completed', JSON.stringify(task));
    const zip = await fetch(task.result.url);
    assert.equal(zip.status, 200);
    const bytes = Buffer.from(await zip.arrayBuffer());
    assert.equal(bytes.subarray(0, 2).toString(), 'PK', 'a ZIP archive');
    // A tampered or foreign link does not work.
    const tampered = await fetch(task.result.url.replace(/signature=([0-9a-f])/, (_, c) => `signature=${c === '0' ? '1' : '0'}`));
    assert.equal(tampered.status, 403);

    const json = await server.exportUser(a);
    assert.deepEqual(json.messages.map((m) => m.text), ['mine']);
  });
});
