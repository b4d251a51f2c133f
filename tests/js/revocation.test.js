// Revocation through the stream-chat SDK on two nodes (same database, Redis bus): a user
// connected to node B is cut off when the server SDK deactivates them, or revokes their
// tokens, through node A — their client goes offline, gets no message sent afterwards, and
// cannot connect again with any token while deactivated (or with a token issued before the
// cut-off). `reactivateUser` gives access back.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { barrier, collect, connect, disconnectAll, newClient, poll, serverClient, startCluster, uid, upsertUsers, waitFor, wsError } from './harness.js';

const nowSecs = () => Math.floor(Date.now() / 1000);

/** A user token with an `iat` claim, as the server SDK's createToken(user, exp, iat) makes it. */
const tokenAt = (srv, userId, iat) => serverClient(srv).createToken(userId, undefined, iat);

/** Connects `userId` on `srv` with `token`, watching `cid`. */
async function connectWatching(srv, userId, token, channelId, members) {
  const client = newClient(srv);
  await client.connectUser({ id: userId }, token);
  const ch = client.channel('messaging', channelId, { members });
  await ch.watch();
  return { client, ch };
}

/** Whether connectUser with `token` is refused. */
async function refused(srv, userId, token) {
  const client = newClient(srv);
  try {
    await client.connectUser({ id: userId }, token);
    await client.disconnectUser();
    return false;
  } catch (err) {
    return wsError(err).StatusCode === 401 || /revoked|deactivated/.test(err.message);
  }
}

describe('two nodes: revocation through the server SDK reaches the other node', () => {
  let cluster, a, b, bob;
  const clients = [];

  before(async () => {
    cluster = await startCluster();
    [a, b] = cluster.nodes;
    bob = { id: uid('bob') };
    await upsertUsers(a, [bob.id]);
    Object.assign(bob, await connect(b, bob.id));
    clients.push(bob.client);
  });
  after(async () => {
    await disconnectAll(clients);
    await cluster?.stop();
  });

  async function cutOff(victimId, token, revoke) {
    const channelId = uid('revoke');
    const members = [victimId, bob.id];
    const victim = await connectWatching(b, victimId, token, channelId, members);
    clients.push(victim.client);
    const bobCh = bob.client.channel('messaging', channelId, { members });
    await bobCh.watch();
    await revoke();
    // The SDK announces `connection.changed` only 5 s after a close: watch its socket state.
    const offline = poll(
      'the revoked client on node B is disconnected within 1 s',
      () => victim.client.wsConnection?.isHealthy,
      (healthy) => healthy === false,
      { timeoutMs: 1_000 },
    );
    // Sent right after the call returned, through the node the victim is on.
    const late = collect(victim.client, 'message.new');
    const text = `after ${uid('m')}`;
    const seen = waitFor(bobCh, 'message.new', (e) => e.message?.text === text);
    await bobCh.sendMessage({ text });
    await seen;
    await offline;
    assert.deepEqual(late.stop(), [], 'the revoked client receives nothing sent after the call');
    await victim.client.disconnectUser().catch(() => {});
  }

  test('deactivateUser on A cuts the client on B off; a fresh token is refused until reactivateUser', async () => {
    const server = serverClient(a);
    const victimId = uid('dana');
    await upsertUsers(a, [victimId]);
    await cutOff(victimId, tokenAt(a, victimId, nowSecs() - 10), async () => {
      const res = await server.deactivateUser(victimId);
      assert.equal(res.user.id, victimId);
      assert.ok(res.user.deactivated_at, 'the user is deactivated');
    });
    const fresh = tokenAt(a, victimId, nowSecs());
    assert.ok(await refused(b, victimId, fresh), 'a deactivated user is refused whatever the token');
    const res = await server.reactivateUser(victimId);
    assert.equal(res.user.deactivated_at, undefined);
    const back = newClient(b);
    await back.connectUser({ id: victimId }, fresh);
    clients.push(back);
    await barrier(back);
  });

  test('revokeUserToken on A cuts off the client on B; tokens issued afterwards still work', async () => {
    const server = serverClient(a);
    const victimId = uid('erin');
    await upsertUsers(a, [victimId]);
    const old = tokenAt(a, victimId, nowSecs() - 10);
    await cutOff(victimId, old, async () => {
      await server.revokeUserToken(victimId, new Date());
    });
    assert.ok(await refused(b, victimId, old), 'the revoked token is refused');
    const fresh = newClient(b);
    await fresh.connectUser({ id: victimId }, tokenAt(a, victimId, nowSecs() + 2));
    clients.push(fresh);
    await barrier(fresh);
  });
});
