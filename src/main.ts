#!/usr/bin/env node
/**
 * The CLI and the only reader of process.env:
 *   skypush serve                      start the server (default)
 *   skypush migrate                    bring the database schema up to date and exit
 *   skypush user add --username NAME [--password PW] [--role admin|user] [--display-name NAME] [--id N]
 */
import { parseArgs } from 'node:util';
import { createApp, type App } from './app.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { openStore } from './store/database.ts';
import { migrateToLatest } from './store/migrate.ts';
import { webPages } from './web/pages.ts';

/** How long a fatal error leaves the graceful close before the process exits anyway. */
const FATAL_CLOSE_MS = 5_000;

/**
 * The tripwire (docs/OPERATIONS.md, "Fatal errors"): an error that reached the process is a bug that
 * escaped every handler, and the state it leaves is unknown. Log it at fatal with its stack, stop
 * accepting, close what can be closed within FATAL_CLOSE_MS (WebSockets get 1012, so clients
 * reconnect elsewhere), and exit 1 so the supervisor starts a clean process. The log lines are
 * recognisable ("uncaught exception" / "unhandled rejection"): tests assert that input never makes one.
 */
function installTripwire(app: App): void {
  let tripped = false;
  const fatal = (msg: string, err: unknown) => {
    app.logger.fatal({ err, pid: process.pid }, msg);
    if (tripped) return;
    tripped = true;
    process.exitCode = 1;
    setTimeout(() => process.exit(1), FATAL_CLOSE_MS);
    app.close().then(
      () => process.exit(1),
      (closeErr: unknown) => {
        app.logger.error({ err: closeErr }, 'shutdown after a fatal error failed');
        process.exit(1);
      },
    );
  };
  process.on('uncaughtException', (err) => fatal('uncaught exception', err));
  process.on('unhandledRejection', (reason) => fatal('unhandled rejection', reason));
}

function fail(message: string, code = 1): never {
  console.error(`skypush: ${message}`);
  process.exit(code);
}

async function serve(config: Config): Promise<void> {
  const app = await createApp(config, { plugins: [webPages] });
  installTripwire(app);
  const { generatedPassword } = await app.bootstrap();
  if (generatedPassword !== undefined) {
    // Printed once, on stdout only, never through the logger.
    console.log(
      `\n  Created admin user "${config.auth.adminUsername}" with password: ${generatedPassword}\n  (shown once; set SKYPUSH_ADMIN_PASSWORD to choose it)\n`,
    );
  }
  const address = await app.listen();
  app.logger.info({ address, database: config.database.kind, node: config.nodeId }, 'skypush listening');

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    app.logger.info({ signal }, 'shutting down');
    const hard = setTimeout(() => process.exit(1), config.realtime.shutdownDrainMs + 10_000);
    hard.unref();
    app.close().then(
      () => process.exit(0),
      (err) => {
        app.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function migrate(config: Config): Promise<void> {
  const store = openStore(config.database);
  try {
    const applied = await migrateToLatest(store);
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'schema is up to date');
  } finally {
    await store.close();
  }
}

async function userAdd(config: Config, argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      username: { type: 'string' },
      password: { type: 'string' },
      role: { type: 'string', default: 'user' },
      'display-name': { type: 'string' },
      id: { type: 'string' },
    },
  });
  if (!values.username) fail('user add: --username is required');
  if (values.role !== 'user' && values.role !== 'admin') fail('user add: --role must be admin or user');
  if (values.id !== undefined && !/^[1-9]\d{0,14}$/.test(values.id))
    fail('user add: --id must be a positive integer');
  const app = await createApp(config);
  try {
    const user = await app.users.create({
      username: values.username,
      role: values.role,
      ...(values.password !== undefined && { password: values.password }),
      ...(values['display-name'] !== undefined && { displayName: values['display-name'] }),
      ...(values.id !== undefined && { id: Number(values.id) }),
    });
    console.log(JSON.stringify(user));
  } catch (e) {
    fail(`user add: ${(e as Error).message}`);
  } finally {
    await app.close();
  }
}

async function main(): Promise<void> {
  const [command = 'serve', sub, ...rest] = process.argv.slice(2);
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (e) {
    if (e instanceof ConfigError) fail(e.message, 2);
    throw e;
  }
  if (command === 'serve') return serve(config);
  if (command === 'migrate') return migrate(config);
  if (command === 'user' && sub === 'add') return userAdd(config, rest);
  fail(`unknown command "${[command, sub].filter(Boolean).join(' ')}"; use serve, migrate or user add`, 2);
}

main().catch((e: unknown) =>
  e instanceof ConfigError ? fail(e.message, 2) : fail((e as Error).stack ?? String(e)),
);
