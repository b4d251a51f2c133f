// Presence as Stream delivers it (watchers hear members come online and go offline with the
// SDK's default `presence: false`), guest users and anonymous connections, and push devices.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  barrier, collect, connect, disconnectAll, newClient, serverClient, startServer, uid, upsertUsers, waitFor,
} from './harness.js';

describe('presence, guests, anonymous users and devices', () => {
  let srv, alice, doc, clients = [];
  let town, clinic;

  before(async () => {
    srv = await startServer({ env: { WARD_GUEST_USERS: 'true', WARD_ANONYMOUS_USERS: 'true' } });
    const ids = { alice: uid('alice'), bob: uid('bob'), carol: uid('carol'), doc: uid('doc') };
    await upsertUsers(srv, Object.values(ids));
    alice = { id: ids.alice, ...(await connect(srv, ids.alice)) };
    doc = ids.doc;
    alice.bob = ids.bob;
    alice.carol = ids.carol;
    clients.push(alice.client);
    const server = serverClient(srv);
    town = uid('town');
    clinic = uid('clinic');
    await server.channel('livestream', town, { created_by_id: doc }).create();
    await server.channel('phi', clinic, { created_by_id: doc, members: [doc] }).create();
  });
  after(async () => {
    await disconnectAll(clients);
    await srv?.stop();
  });

  test('a watcher hears a member come online and go offline without asking for presence', async () => {
    const ch = alice.client.channel('messaging', uid('ward'), { members: [alice.id, alice.bob] });
    await ch.watch(); // presence: false, as ChannelList and channel.watch() send it
    const carolCh = (await connect(srv, alice.carol)).client;
    clients.push(carolCh);
    await carolCh.channel('messaging', uid('own'), { members: [alice.carol] }).watch();
    const leaked = collect(carolCh, 'user.presence.changed', (e) => e.user?.id === alice.bob);

    const online = waitFor(alice.client, 'user.presence.changed', (e) => e.user?.id === alice.bob && e.user.online);
    const bob = await connect(srv, alice.bob);
    await online;
    assert.equal(ch.state.members[alice.bob]?.user?.online, true, 'the member state is updated');

    const offline = waitFor(alice.client, 'user.presence.changed', (e) => e.user?.id === alice.bob && !e.user.online);
    await bob.client.disconnectUser();
    const ev = await offline;
    assert.ok(ev.user.last_active, 'last_active is set');
    assert.equal(ch.state.members[alice.bob]?.user?.online, false);

    await barrier(carolCh);
    assert.deepEqual(leaked.stop(), [], 'no presence of a user carol shares no channel with');
  });

  test('setGuestUser: a guest reads a livestream channel and no phi channel', async () => {
    const guest = newClient(srv);
    clients.push(guest);
    await guest.setGuestUser({ id: 'dr-somebody', name: 'Visitor' });
    assert.match(guest.userID, /^guest-/, 'the id is the server\'s, not the one asked for');
    assert.equal(guest.user.role, 'guest');
    const live = guest.channel('livestream', town);
    await live.watch();
    const got = waitFor(live, 'message.new', (e) => e.message?.text === 'welcome, guests');
    await serverClient(srv).channel('livestream', town).sendMessage({ text: 'welcome, guests', user_id: doc });
    await got;
    await assert.rejects(guest.channel('phi', clinic).watch(), /not allowed|403/i);
  });

  test('connectAnonymousUser: watches a livestream channel, never a phi one', async () => {
    const anon = newClient(srv);
    clients.push(anon);
    await anon.connectAnonymousUser();
    const live = anon.channel('livestream', town);
    const state = await live.watch();
    assert.equal(state.channel.cid, `livestream:${town}`);
    const got = waitFor(live, 'message.new', (e) => e.message?.text === 'hello, anonymous');
    await serverClient(srv).channel('livestream', town).sendMessage({ text: 'hello, anonymous', user_id: doc });
    await got;
    await assert.rejects(anon.channel('phi', clinic).watch(), /not allowed|403/i);
    await assert.rejects(live.sendMessage({ text: 'anonymous users only read' }));
  });

  test('addDevice, getDevices, removeDevice and setPushPreferences', async () => {
    const token = `fcm-${uid('token')}`;
    await alice.client.addDevice(token, 'firebase', undefined, 'prod');
    await alice.client.addDevice('apn-token-1', 'apn');
    let { devices } = await alice.client.getDevices();
    assert.deepEqual(devices.map((d) => d.id).sort(), ['apn-token-1', token].sort());
    const fcm = devices.find((d) => d.id === token);
    assert.equal(fcm.push_provider, 'firebase');
    assert.equal(fcm.push_provider_name, 'prod');
    await alice.client.removeDevice(token);
    ({ devices } = await alice.client.getDevices());
    assert.deepEqual(devices.map((d) => d.id), ['apn-token-1']);
    await assert.rejects(alice.client.addDevice('t', 'sms'), /push_provider/);

    const res = await alice.client.setPushPreferences([{ chat_level: 'mentions' }]);
    assert.equal(res.user_preferences[alice.id].chat_level, 'mentions');
  });
});
