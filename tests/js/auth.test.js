// Connecting: the `me` object and connection id, token expiry with a refreshing provider,
// bad signatures and bad api keys.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { connect, newClient, serverClient, startServer, StreamChat, tokenFor, uid, upsertUsers, wsError } from './harness.js';

describe('auth and connect', () => {
  let srv;
  const clients = [];
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.disconnectUser().catch(() => {})));
    await srv?.stop();
  });

  test('connectUser resolves with health.check, connection_id and a full `me`', async () => {
    const id = uid('alice');
    await upsertUsers(srv, [{ id, name: 'Alice', favorite_color: 'teal' }]);
    const client = newClient(srv);
    clients.push(client);
    const res = await client.connectUser({ id, image: 'https://example.com/a.png' }, tokenFor(srv, id));

    assert.equal(res.type, 'health.check');
    assert.equal(typeof res.connection_id, 'string');
    assert.ok(res.connection_id.length > 0, 'connection_id is not empty');
    assert.equal(client._getConnectionID(), res.connection_id);
    assert.ok(client.wsConnection?.isHealthy, 'the SDK considers the connection healthy');

    const me = res.me;
    assert.equal(me.id, id);
    assert.equal(me.name, 'Alice', 'stored fields are kept');
    assert.equal(me.favorite_color, 'teal', 'custom fields are flattened');
    assert.equal(me.image, 'https://example.com/a.png', 'user_details from connectUser are upserted');
    assert.equal(me.online, true);
    assert.ok(Array.isArray(me.mutes), 'me.mutes is an array');
    assert.ok(Array.isArray(me.channel_mutes), 'me.channel_mutes is an array');
    assert.equal(me.total_unread_count, 0);
    assert.equal(me.unread_channels, 0);
    assert.equal(client.user.id, id);
    assert.equal(client.userID, id);
  });

  test('the connect upsert is visible to other clients (queryUsers)', async () => {
    const id = uid('carol');
    const client = newClient(srv);
    clients.push(client);
    await client.connectUser({ id, name: 'Carol C', hobby: 'chess' }, tokenFor(srv, id));
    const { users } = await serverClient(srv).queryUsers({ id: { $eq: id } });
    assert.equal(users.length, 1);
    assert.equal(users[0].name, 'Carol C', 'a space in user_details survives form decoding');
    assert.equal(users[0].hobby, 'chess');
    assert.equal(users[0].online, true);
  });

  test('an expired token from the provider is refreshed (code 40) and connectUser succeeds', async () => {
    const id = uid('exp');
    await upsertUsers(srv, [id]);
    const server = serverClient(srv);
    const issued = [];
    const provider = async () => {
      const now = Math.floor(Date.now() / 1000);
      // First call: already expired (beyond the server's leeway); later calls: valid.
      const token = issued.length === 0 ? server.createToken(id, now - 60) : server.createToken(id, now + 3600);
      issued.push(token);
      return token;
    };
    const logs = [];
    const client = newClient(srv, { logger: (level, message) => logs.push(message) });
    clients.push(client);
    const res = await client.connectUser({ id }, provider);
    assert.ok(issued.length >= 2, `the provider was called again after the expiry (calls: ${issued.length})`);
    assert.ok(
      logs.some((m) => /WS failure due to expired token/.test(m)),
      'the SDK saw code 40 on the first socket and took the token-refresh path',
    );
    assert.equal(res.me?.id ?? client.user.id, id);
    assert.equal(client.tokenManager.getToken(), issued[issued.length - 1], 'the client uses the refreshed token');
    assert.ok(client.wsConnection.isHealthy);

    // REST works with the refreshed token.
    const ch = client.channel('messaging', uid('exp-ch'), { members: [id] });
    const state = await ch.watch();
    assert.equal(state.channel.cid, ch.cid);
  });

  test('a REST call with an expired token and a provider is retried with a fresh token', async () => {
    const id = uid('rexp');
    await upsertUsers(srv, [id]);
    const server = serverClient(srv);
    let calls = 0;
    let expireNext = false;
    const provider = async () => {
      calls += 1;
      const now = Math.floor(Date.now() / 1000);
      return expireNext ? ((expireNext = false), server.createToken(id, now - 60)) : server.createToken(id, now + 3600);
    };
    const client = newClient(srv);
    clients.push(client);
    await client.connectUser({ id }, provider);
    // Swap in an expired token behind the SDK's back: the next REST call gets code 40 and
    // the SDK reloads the token from the provider and retries.
    client.tokenManager.token = server.createToken(id, Math.floor(Date.now() / 1000) - 60);
    const before = calls;
    const res = await client.getUnreadCount();
    assert.equal(res.total_unread_count, 0);
    assert.ok(calls > before, 'the provider was asked for a new token');
  });

  test('a token signed with another secret is rejected with code 43', async () => {
    const id = uid('forger');
    const forger = new StreamChat(srv.apiKey, 'not-the-secret', {});
    const bad = forger.createToken(id);
    const client = newClient(srv);
    await assert.rejects(client.connectUser({ id }, bad), (err) => {
      const e = wsError(err);
      assert.equal(e.code, 43, `code 43 expected, got ${err.message}`);
      assert.equal(e.StatusCode, 401);
      assert.equal(e.isWSFailure, false);
      assert.match(e.message, /WS failed with code 43/);
      return true;
    });
    assert.equal(client.userID, undefined, 'the SDK disconnected the user after the rejection');
  });

  test('a token for another user is rejected', async () => {
    const id = uid('mallory');
    const client = newClient(srv);
    // The SDK itself checks user_id against the (unverified) token payload.
    await assert.rejects(client.connectUser({ id }, tokenFor(srv, uid('victim'))));
  });

  test('a WebSocket connect with a bad api_key is rejected with code 2', async () => {
    const id = uid('wrongkey');
    const client = new StreamChat('wrong-key', { baseURL: srv.baseURL, allowServerSideConnect: true });
    await assert.rejects(client.connectUser({ id }, tokenFor(srv, id)), (err) => {
      assert.equal(wsError(err).code, 2, err.message);
      return true;
    });
  });

  test('a REST call with a bad api_key is rejected with code 2', async () => {
    const bad = new StreamChat('wrong-key', srv.secret, { baseURL: srv.baseURL });
    await assert.rejects(bad.queryUsers({ id: { $eq: 'x' } }), (err) => {
      assert.equal(err.code, 2, err.message);
      assert.equal(err.status, 401);
      assert.match(err.message, /StreamChat error code 2:/);
      return true;
    });
    // And with a user token on an otherwise valid connection's REST call.
    const id = uid('keyuser');
    const { client } = await connect(srv, id);
    clients.push(client);
    const realKey = client.key;
    client.key = 'wrong-key';
    try {
      await assert.rejects(client.getUnreadCount(), (err) => err.code === 2);
    } finally {
      client.key = realKey;
    }
  });

  test('a token used before its iat is rejected with code 42', async () => {
    const id = uid('early');
    const early = serverClient(srv).createToken(id, undefined, Math.floor(Date.now() / 1000) + 3600);
    const client = newClient(srv);
    await assert.rejects(client.connectUser({ id }, early), (err) => {
      assert.equal(wsError(err).code, 42, err.message);
      return true;
    });
  });

  test('REST replies carry duration; errors carry the Stream error body', async () => {
    const server = serverClient(srv);
    const ok = await server.queryUsers({ id: { $eq: 'nobody' } });
    assert.match(ok.duration, /^\d+\.\d{2}ms$/);
    await assert.rejects(server.getMessage('does-not-exist'), (err) => {
      assert.equal(err.code, 16);
      assert.equal(err.status, 404);
      const body = err.response?.data;
      assert.equal(body.code, 16);
      assert.equal(body.StatusCode, 404);
      assert.equal(typeof body.message, 'string');
      assert.match(body.duration, /ms$/);
      assert.ok(body.more_info);
      return true;
    });
  });

  test('CORS preflight allows the headers the SDK sends', async () => {
    const res = await fetch(`${srv.baseURL}/channels`, {
      method: 'OPTIONS',
      headers: {
        Origin: 'https://app.example.com',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization,stream-auth-type,x-stream-client,x-client-request-id,content-type',
      },
    });
    assert.ok(res.status === 200 || res.status === 204, `preflight status ${res.status}`);
    const allowed = (res.headers.get('access-control-allow-headers') || '').toLowerCase();
    for (const h of ['authorization', 'stream-auth-type', 'x-stream-client', 'x-client-request-id']) {
      assert.ok(allowed === '*' || allowed.includes(h), `preflight allows ${h} (got ${allowed})`);
    }
    assert.ok(res.headers.get('access-control-allow-origin'));
  });

  test('a REST call with a token from another secret is rejected with code 43', async () => {
    const forged = new StreamChat(srv.apiKey, 'not-the-secret', { baseURL: srv.baseURL });
    await assert.rejects(forged.queryUsers({ id: { $eq: 'x' } }), (err) => {
      assert.equal(err.code, 43, err.message);
      assert.equal(err.status, 401);
      return true;
    });
  });
});
