// Test harness: starts a fresh `ward serve` (or several nodes sharing a database and Redis,
// optionally behind a tiny TCP balancer; fresh data dirs; fresh PostgreSQL database when
// WARD_JS_DB=postgres), builds real `stream-chat` SDK clients against it, and waits for
// events with promises (never with sleeps).
//
// Environment:
//   WARD_JS_DB   sqlite (default) | postgres
//   WARD_BIN     path to the ward binary (default ../../target/debug/ward, relative to tests/js)
//   WARD_JS_PG   PostgreSQL server URL without database (default postgres://postgres@127.0.0.1:5432)
//   WARD_JS_KEEP=1 keeps the temp data dir (server log in ward.log) after the run
//   WARD_TEST_LOG_DIR  server logs go there instead (one file per server, kept), for
//                tests/logscan/scan.py; the known secrets of each server are listed in
//                <dir>/known-secrets/ so the scanner finds them in any log
//   WARD_JS_REDIS Redis URL for the several-nodes tests (cluster, drain); default
//                WARD_TEST_REDIS_URL, else redis://127.0.0.1:6379

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
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
export const WARD_BIN = path.resolve(HERE, process.env.WARD_BIN || '../../target/debug/ward');
const PG_URL = (process.env.WARD_JS_PG || 'postgres://postgres@127.0.0.1:5432').replace(/\/+$/, '');
export const REDIS_URL = process.env.WARD_JS_REDIS || process.env.WARD_TEST_REDIS_URL || 'redis://127.0.0.1:6379';

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
 * Starts a fresh server. Returns `{ baseURL, metricsURL, apiKey, secret, db, logFile, stop() }`.
 * `stop()` sends SIGTERM, waits for exit, drops the PostgreSQL database (best effort) and
 * removes the data dir.
 *
 * Several nodes of one deployment (see `startCluster`) pass the shared `databaseUrl`,
 * `apiKey` and `secret`: the node then owns only its data dir (and log), not the database.
 * `files` ({name: Buffer}) are written into the data dir (mode 0600) before the start.
 * `bin` runs another ward binary (the rolling-upgrade drill's next version).
 */
export async function startServer({ env = {}, databaseUrl, apiKey: key, secret: sec, label = 'ward', files = {}, bin = WARD_BIN } = {}) {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'ward-js-'));
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(path.join(dataDir, name), content, { mode: 0o600 });
  }
  const logFile = serverLogFile(dataDir, label);
  const apiKey = key ?? `key${rand(4)}`;
  const secret = sec ?? `secret-${rand(16)}`;
  knownSecrets([secret, ...Object.values(files)]);
  const dbName = !databaseUrl && DB_KIND === 'postgres' ? `ward_js_${rand(6)}` : null;
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
    // GET /metrics has a listener of its own (port printed as `ward: metrics on URL`).
    WARD_METRICS_BIND: '127.0.0.1:0',
    WARD_LOG: process.env.WARD_LOG || 'info,sqlx=warn',
    ...env,
  };
  if (dbName) childEnv.WARD_DATABASE_URL = `${PG_URL}/${dbName}`;
  if (databaseUrl) childEnv.WARD_DATABASE_URL = databaseUrl;

  const logFd = openSync(logFile, 'a');
  const child = spawn(bin, ['serve'], { env: childEnv, stdio: ['ignore', 'pipe', logFd] });
  closeSync(logFd);
  running.add(child);
  child.once('exit', () => running.delete(child));

  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (error) => resolve({ code: null, signal: null, error })); // never spawned
  });
  const cleanup = () => {
    if (dbName) dropDatabase(dbName);
    if (process.env.WARD_JS_KEEP !== '1') rmSync(dataDir, { recursive: true, force: true });
  };
  let baseURL;
  let metricsURL;
  try {
    baseURL = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${label} did not print its listening line within ${START_TIMEOUT_MS} ms\n${tail(logFile)}`));
      }, START_TIMEOUT_MS);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`could not start ${WARD_BIN}: ${err.message} (build it with \`cargo build\` or set WARD_BIN)`));
      });
      exited.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`${label} exited before it was ready (code ${code}, signal ${signal})\n${tail(logFile)}`));
      });
      const lines = createInterface({ input: child.stdout });
      lines.on('line', (line) => {
        const metrics = /^ward: metrics on (http:\/\/\S+)$/.exec(line.trim());
        if (metrics) metricsURL = metrics[1];
        const m = /^ward: listening on (http:\/\/\S+)$/.exec(line.trim());
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
    });
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    cleanup();
    throw err;
  }

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
    cleanup();
  };

  return { label, baseURL, metricsURL, apiKey, secret, db: DB_KIND, dbName, dataDir, logFile, process: child, exited, stop };
}

const LOG_DIR = process.env.WARD_TEST_LOG_DIR;

/**
 * `<WARD_TEST_LOG_DIR>/js-<db>-<test file>-<label>-<random>.log` when that is set (kept after
 * the run for the log scanner), else ward.log in the server's data dir.
 */
function serverLogFile(dataDir, label) {
  if (!LOG_DIR) return path.join(dataDir, 'ward.log');
  mkdirSync(LOG_DIR, { recursive: true });
  const file = path.basename(process.argv[1] || 'node', '.js');
  return path.join(LOG_DIR, `js-${DB_KIND}-${file}-${label}-${rand(4)}.log`);
}

/**
 * Records secrets this process handed to a server (API secrets, root keys as hex and base64)
 * in `<WARD_TEST_LOG_DIR>/known-secrets/`, one a line: the scanner fails on any of them in a
 * log. Buffers are binary keys; strings are written as they are.
 */
export function knownSecrets(values) {
  if (!LOG_DIR) return;
  const dir = path.join(LOG_DIR, 'known-secrets');
  mkdirSync(dir, { recursive: true });
  const lines = values.flatMap((v) => (Buffer.isBuffer(v) ? [v.toString('hex'), v.toString('base64')] : [String(v)]));
  appendFileSync(path.join(dir, `js-${process.pid}.txt`), lines.map((l) => `${l}\n`).join(''));
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

/** Resolves after `ms` (used only between the probes of `poll`, never to synchronise). */
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const show = (v) => {
  if (v instanceof Error) return `error: ${v.message}`;
  try {
    return JSON.stringify(v)?.slice(0, 500);
  } catch {
    return String(v);
  }
};

/**
 * Bounded poll, for state that no event announces (what another node has heard over the
 * bus, a health endpoint): calls `probe()` every `intervalMs` until `check(value)` holds and
 * resolves with that value; rejects after `timeoutMs` with `what` and the last value seen.
 * A probe that throws counts as "not yet".
 */
export async function poll(what, probe, check = Boolean, { timeoutMs = 10_000, intervalMs = 20 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (check(last)) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting until ${what} (last seen: ${show(last)})`);
    }
    await pause(intervalMs);
  }
}

/** `GET /healthz` of a node: `{ status, body }` (body null when it is not JSON). */
export async function healthz(srv) {
  const res = await fetch(`${srv.baseURL}/healthz`);
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body };
}

/**
 * Several nodes of one deployment: the same database (one PostgreSQL database, or on SQLite
 * one file that every node opens), the same credentials, the same field-encryption root key,
 * the same Redis pub/sub channel (unique to this call, so concurrent test files do not hear
 * each other) and distinct node ids `node-a`, `node-b`, … Nodes start one after the other (the first one migrates), then
 * this waits until every node reports `bus: "up"` on /healthz.
 *
 * Returns `{ nodes, apiKey, secret, databaseUrl, redisChannel, stop() }`; each node is what
 * `startServer` returns (so `serverClient(node)`, `connect(node, …)` work on it). `stop()`
 * stops every node that still runs, then drops the database / removes the SQLite file.
 * `env` applies to every node, `nodeEnv(i)` to node i only.
 */
export async function startCluster({ size = 2, env = {}, nodeEnv = () => ({}) } = {}) {
  const apiKey = `key${rand(4)}`;
  const secret = `secret-${rand(16)}`;
  const redisChannel = `ward-js:${rand(8)}`;
  // The local root-key provider reads <data dir>/root.key (and creates one when missing, "for
  // single-machine use only"): KEKs wrapped by one node's key do not open on another, so the
  // nodes of a deployment get the same key, as they would from a shared KMS.
  const rootKey = randomBytes(32);
  let dbName = null;
  let sharedDir = null;
  let databaseUrl;
  if (DB_KIND === 'postgres') {
    dbName = `ward_js_${rand(6)}`;
    databaseUrl = `${PG_URL}/${dbName}`;
  } else {
    sharedDir = mkdtempSync(path.join(tmpdir(), 'ward-js-cluster-'));
    databaseUrl = `sqlite://${path.join(sharedDir, 'ward.db')}`;
  }
  const nodes = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(nodes.map((n) => n.stop()));
    if (dbName) dropDatabase(dbName);
    if (sharedDir && process.env.WARD_JS_KEEP !== '1') rmSync(sharedDir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < size; i++) {
      const nodeId = `node-${String.fromCharCode(97 + i)}`;
      nodes.push(
        await startServer({
          databaseUrl,
          apiKey,
          secret,
          label: nodeId,
          files: { 'root.key': rootKey },
          env: {
            WARD_REDIS_URL: REDIS_URL,
            WARD_REDIS_CHANNEL: redisChannel,
            WARD_NODE_ID: nodeId,
            ...env,
            ...nodeEnv(i),
          },
        }),
      );
    }
    await Promise.all(
      nodes.map((n) =>
        poll(
          `${n.label} joined the Redis bus at ${REDIS_URL} (GET /healthz answers bus "up"; is Redis running? set WARD_JS_REDIS)`,
          () => healthz(n),
          (h) => h.status === 200 && h.body?.bus === 'up',
          { timeoutMs: 15_000 },
        ),
      ),
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes, apiKey, secret, db: DB_KIND, databaseUrl, redisChannel, rootKey, stop };
}

/**
 * A tiny TCP load balancer in front of `backends` (nodes or base URLs): each new client
 * connection is forwarded to the first backend that accepts the TCP connection (in order;
 * the next one on a connection error), then bytes are piped both ways. A node that stops
 * listening (SIGTERM drains it) thus loses new connections to the next one, as behind a
 * real load balancer. `hold()` makes it refuse (reset) every new connection until
 * `release()`, like a balancer that has not yet failed over.
 *
 * `prefer(label)` puts that backend first, as a balancer takes a node out of rotation before
 * it is drained (new connections go to the preferred one while it accepts).
 *
 * Returns `{ baseURL, accepted: {label: count}, hold(), release(), prefer(label), close() }`.
 */
export async function startProxy(backends) {
  const targets = backends.map((b) => {
    const url = new URL(typeof b === 'string' ? b : b.baseURL);
    return { host: url.hostname, port: Number(url.port), label: b.label ?? url.host };
  });
  const accepted = Object.fromEntries(targets.map((t) => [t.label, 0]));
  const sockets = new Set();
  const track = (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => {}); // reported through 'close'; a reset is normal here
  };
  let held = false;
  const server = createServer((client) => {
    track(client);
    if (held) {
      client.resetAndDestroy();
      return;
    }
    client.pause(); // keep what the client sends until a backend accepted
    const attempt = (i) => {
      if (client.destroyed) return;
      if (i >= targets.length) {
        client.resetAndDestroy();
        return;
      }
      const t = targets[i];
      const upstream = createConnection({ host: t.host, port: t.port });
      track(upstream);
      let connected = false;
      upstream.once('connect', () => {
        connected = true;
        accepted[t.label] += 1;
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
      upstream.once('error', () => {
        if (!connected) attempt(i + 1);
        else if (!client.destroyed) client.resetAndDestroy();
      });
      upstream.once('close', () => {
        if (connected) client.end(); // after what was piped (pipe ends it too on a clean FIN)
      });
      client.once('close', () => upstream.destroy());
    };
    attempt(0);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    baseURL: `http://127.0.0.1:${port}`,
    accepted,
    hold() {
      held = true;
    },
    release() {
      held = false;
    },
    prefer(label) {
      const i = targets.findIndex((t) => t.label === label);
      if (i < 0) throw new Error(`no backend ${label}`);
      targets.unshift(...targets.splice(i, 1));
    },
    async close() {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
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

/**
 * Planted in a custom field of every user this harness creates and in its barrier events: in
 * a server log it is PHI that leaked (tests/logscan/scan.py looks for it).
 */
export const PHI_MARKER = 'WARDPHI';

/**
 * Creates users through the server client. `specs` are ids or user objects; each gets the
 * PHI marker in a `diagnosis` field unless it has one.
 */
export async function upsertUsers(srv, specs) {
  const users = specs.map((s) => ({ diagnosis: `${PHI_MARKER} ${rand(3)}`, ...(typeof s === 'string' ? { id: s, name: s } : s) }));
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
  await ch.sendEvent({ type: 'ward.barrier', token, note: PHI_MARKER });
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
