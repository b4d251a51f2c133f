// Test harness: starts a fresh `ward serve` (fresh data dir; fresh PostgreSQL database when
// WARD_JS_DB=postgres), builds real `stream-chat` SDK clients against it, and waits for
// events with promises (never with sleeps).
//
// Environment:
//   WARD_JS_DB   sqlite (default) | postgres
//   WARD_BIN     path to the ward binary (default ../../target/debug/ward, relative to tests/js)
//   WARD_JS_PG   PostgreSQL server URL without database (default postgres://postgres@127.0.0.1:5432)
//   WARD_JS_KEEP=1 keeps the temp data dir (server log in ward.log) after the run

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

import { StreamChat } from 'stream-chat';

const HERE = path.dirname(fileURLToPath(import.meta.url));

export const DB_KIND = (process.env.WARD_JS_DB || 'sqlite').toLowerCase();
if (!['sqlite', 'postgres'].includes(DB_KIND)) {
  throw new Error(`WARD_JS_DB must be sqlite or postgres, got ${JSON.stringify(DB_KIND)}`);
}
const WARD_BIN = path.resolve(HERE, process.env.WARD_BIN || '../../target/debug/ward');
const PG_URL = (process.env.WARD_JS_PG || 'postgres://postgres@127.0.0.1:5432').replace(/\/+$/, '');

/** How long to wait for the server's "listening" line (PostgreSQL migrations included). */
const START_TIMEOUT_MS = 30_000;
/** Default wait for one WebSocket event. */
export const EVENT_TIMEOUT_MS = 5_000;

const rand = (n = 6) => randomBytes(n).toString('hex');

/** Servers started by this process; killed if the process exits without stopping them. */
const running = new Set();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A unique id with a readable prefix (users, channels, messages). */
export const uid = (prefix = 'id') => `${prefix}-${rand(5)}`;

function tail(file, lines = 40) {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no server log)';
  }
}

/**
 * Starts a fresh server. Returns `{ baseURL, apiKey, secret, db, logFile, stop() }`.
 * `stop()` sends SIGTERM, waits for exit, drops the PostgreSQL database (best effort) and
 * removes the data dir.
 */
export async function startServer({ env = {} } = {}) {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'ward-js-'));
  const logFile = path.join(dataDir, 'ward.log');
  const apiKey = `key${rand(4)}`;
  const secret = `secret-${rand(16)}`;
  const dbName = DB_KIND === 'postgres' ? `ward_js_${rand(6)}` : null;
  // Only this harness configures the server: drop WARD_* settings from the caller's shell
  // (a stray WARD_DEV_TOKENS or WARD_DATABASE_URL would change what is tested).
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('WARD_') || k === 'WARD_LOG'),
  );
  const childEnv = {
    ...inherited,
    WARD_BIND: '127.0.0.1:0',
    WARD_DATA_DIR: dataDir,
    WARD_API_KEY: apiKey,
    WARD_API_SECRET: secret,
    WARD_LOG: process.env.WARD_LOG || 'info,sqlx=warn',
    ...env,
  };
  if (dbName) childEnv.WARD_DATABASE_URL = `${PG_URL}/${dbName}`;

  const logFd = openSync(logFile, 'a');
  const child = spawn(WARD_BIN, ['serve'], { env: childEnv, stdio: ['ignore', 'pipe', logFd] });
  closeSync(logFd);
  running.add(child);
  child.once('exit', () => running.delete(child));

  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const baseURL = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ward did not print its listening line within ${START_TIMEOUT_MS} ms\n${tail(logFile)}`));
    }, START_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`could not start ${WARD_BIN}: ${err.message} (build it with \`cargo build\` or set WARD_BIN)`));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`ward exited before it was ready (code ${code}, signal ${signal})\n${tail(logFile)}`));
    });
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const m = /^ward: listening on (http:\/\/\S+)$/.exec(line.trim());
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    }
    if (dbName) dropDatabase(dbName);
    if (process.env.WARD_JS_KEEP !== '1') rmSync(dataDir, { recursive: true, force: true });
  };

  return { baseURL, apiKey, secret, db: DB_KIND, dbName, dataDir, logFile, process: child, exited, stop };
}

function dropDatabase(name) {
  const probe = spawnSync('psql', ['--version'], { stdio: 'ignore' });
  if (probe.error || probe.status !== 0) return; // no psql: leave it (best effort)
  const url = new URL(PG_URL);
  spawnSync(
    'psql',
    [
      '-h', url.hostname, '-p', url.port || '5432', '-U', decodeURIComponent(url.username || 'postgres'),
      '-d', 'postgres', '-v', 'ON_ERROR_STOP=0', '-q',
      '-c', `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`,
    ],
    { stdio: 'ignore', timeout: 15_000 },
  );
}

/** The server-side SDK client (signs with the secret). */
export function serverClient(srv) {
  return new StreamChat(srv.apiKey, srv.secret, { baseURL: srv.baseURL });
}

/** A user token signed with the server's secret (exp in seconds since the epoch). */
export function tokenFor(srv, userId, exp) {
  return serverClient(srv).createToken(userId, exp);
}

/** A fresh user-side client (not connected). */
export function newClient(srv, options = {}) {
  return new StreamChat(srv.apiKey, { baseURL: srv.baseURL, allowServerSideConnect: true, ...options });
}

/** Creates users through the server client. `specs` are ids or user objects. */
export async function upsertUsers(srv, specs) {
  const users = specs.map((s) => (typeof s === 'string' ? { id: s, name: s } : s));
  await serverClient(srv).upsertUsers(users);
  return users;
}

/**
 * Connects a user with a real token. Returns `{ client, me, response }` where `response`
 * is the `health.check` frame `connectUser` resolved with.
 */
export async function connect(srv, user, options = {}) {
  const u = typeof user === 'string' ? { id: user, name: user } : user;
  const client = newClient(srv, options);
  const response = await client.connectUser(u, tokenFor(srv, u.id));
  return { client, me: response.me, response };
}

/**
 * Resolves with the first event of `type` on `client` (or on a Channel) that satisfies
 * `predicate`. Register it BEFORE triggering the action. Rejects with a clear message on
 * timeout.
 */
export function waitFor(emitter, type, predicate = () => true, timeoutMs = EVENT_TIMEOUT_MS) {
  const who = emitter?.userID ?? emitter?.getClient?.().userID ?? '?';
  const where = emitter?.cid ? ` on ${emitter.cid}` : '';
  return new Promise((resolve, reject) => {
    let sub = null;
    const timer = setTimeout(() => {
      sub?.unsubscribe();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for "${type}"${where} as ${who}`));
    }, timeoutMs);
    sub = emitter.on(type, (event) => {
      let ok;
      try {
        ok = predicate(event);
      } catch (err) {
        clearTimeout(timer);
        sub.unsubscribe();
        reject(err);
        return;
      }
      if (ok) {
        clearTimeout(timer);
        sub.unsubscribe();
        resolve(event);
      }
    });
  });
}

/**
 * Waits until every event already queued for this client's WebSocket has been delivered:
 * sends a custom event on a private channel the client watches and waits for its echo.
 * Frames on one connection arrive in order, so anything the server queued for the client
 * before this call has been dispatched once it resolves. Use it to assert that an event
 * did NOT arrive, without sleeping.
 */
export async function barrier(client) {
  let ch = client.__wardBarrier;
  if (!ch) {
    ch = client.channel('messaging', uid('barrier'), { members: [client.userID] });
    await ch.watch();
    client.__wardBarrier = ch;
  }
  const token = randomUUID();
  const echoed = waitFor(ch, 'ward.barrier', (e) => e.token === token);
  await ch.sendEvent({ type: 'ward.barrier', token });
  await echoed;
}

/** Collects events of `type` matching `predicate` until `stop()` is called. */
export function collect(emitter, type, predicate = () => true) {
  const seen = [];
  const sub = emitter.on(type, (e) => {
    if (predicate(e)) seen.push(e);
  });
  return {
    seen,
    stop() {
      sub.unsubscribe();
      return seen;
    },
  };
}

/**
 * Parses the error `connectUser` rejects with: its message is a JSON string
 * `{code, StatusCode, message, isWSFailure}`.
 */
export function wsError(err) {
  try {
    return JSON.parse(err.message);
  } catch {
    return { code: undefined, message: err?.message };
  }
}

/** Closes clients (ignoring errors) — for `after` hooks. */
export async function disconnectAll(...clients) {
  await Promise.all(clients.flat().filter(Boolean).map((c) => c.disconnectUser().catch(() => {})));
}

/**
 * One server plus N connected users, for a test file's `before`/`after` hooks.
 * Returns `{ srv, users: {name: {id, client, me}}, close() }`.
 */
export async function setup(names = [], { userFields = {} } = {}) {
  const srv = await startServer();
  try {
    const ids = Object.fromEntries(names.map((n) => [n, uid(n)]));
    await upsertUsers(srv, names.map((n) => ({ id: ids[n], name: n, ...(userFields[n] || {}) })));
    const users = {};
    for (const n of names) {
      const { client, me, response } = await connect(srv, { id: ids[n] });
      users[n] = { id: ids[n], client, me, response };
    }
    return {
      srv,
      users,
      async close() {
        await disconnectAll(Object.values(users).map((u) => u.client));
        await srv.stop();
      },
    };
  } catch (err) {
    await srv.stop();
    throw err;
  }
}

export { randomUUID, StreamChat };
