// Starts the real `keywire` binary on a free port of 127.0.0.1 with a fresh SQLite data directory,
// as the Rust harness does (crates/keywire-test-support/src/server.rs).

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const ADMIN_TOKEN = 'kw_console_test_token_0123456789abcdef';

/** The binary: `KEYWIRE_BIN`, else `<target>/debug/keywire`. */
export function binary() {
  const target = process.env.CARGO_TARGET_DIR ? resolve(ROOT, process.env.CARGO_TARGET_DIR) : join(ROOT, 'target');
  const path = process.env.KEYWIRE_BIN ?? join(target, 'debug', 'keywire');
  if (!existsSync(path)) {
    throw new Error(`no keywire binary at ${path}: build it (cargo build -p keywire-server --bin keywire) or set KEYWIRE_BIN`);
  }
  return path;
}

/**
 * Starts `keywire serve`; resolves when it prints its address. `stop()` sends SIGTERM, waits for
 * the exit and removes the data directory; it rejects if the server logged a panic.
 */
export function startServer(extraEnv = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'keywire-console-'));
  const child = spawn(binary(), ['serve'], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      KEYWIRE_LISTEN: '127.0.0.1:0',
      KEYWIRE_DATA_DIR: dataDir,
      KEYWIRE_BOOTSTRAP_TOKEN: ADMIN_TOKEN,
      KEYWIRE_OUTBOUND_ALLOW: '127.0.0.1/32',
      KEYWIRE_HTTP_WORKERS: '2',
      KEYWIRE_LOG: 'info',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise((done) => child.on('exit', (code, signal) => done({ code, signal })));
  return new Promise((ready, fail) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`keywire did not start within 60 s\n--- stdout\n${stdout}\n--- stderr\n${stderr}`));
    }, 60_000);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const match = /keywire listening on (http:\/\/\S+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        ready({
          url: match[1],
          token: ADMIN_TOKEN,
          logs: () => stderr,
          async stop() {
            if (child.exitCode === null) child.kill('SIGTERM');
            const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
            await exited;
            clearTimeout(killer);
            rmSync(dataDir, { recursive: true, force: true });
            if (/panicked/.test(stderr)) throw new Error(`keywire logged a panic:\n${stderr}`);
          },
        });
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      fail(new Error(`keywire exited (${code ?? signal}) before listening\n--- stdout\n${stdout}\n--- stderr\n${stderr}`));
    });
  });
}

/** GET/POST an API path with the admin token; resolves to { status, headers, body }. */
export async function call(server, method, path, body) {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${server.token}`,
      ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: response.status, headers: response.headers, body: parsed };
}
