/**
 * The client side of the protocol: spawns the sidecar process and connects over its stdio.
 * Used by the CLI and by the VS Code extension (which passes its own runtime: process.execPath
 * with ELECTRON_RUN_AS_NODE=1). Imports nothing from the engine: only the protocol.
 */
import { ChildProcess, spawn } from 'child_process';
import * as path from 'path';
import { MessageConnection, StreamMessageReader, StreamMessageWriter, createMessageConnection } from 'vscode-jsonrpc/node';
import { Initialize, InitializeParams, InitializeResult, PROTOCOL_VERSION, Shutdown } from './protocol';
import { allocatorEnv } from '../util/allocatorEnv';

export interface SpawnOptions {
  /** Node (or Electron-as-Node) binary; default: this process's. */
  execPath?: string;
  env?: NodeJS.ProcessEnv;
  /** Where sidecar stderr lines go (crash reports, ORT warnings). */
  onStderr?: (line: string) => void;
  /**
   * Start the sidecar in its own process group, so a terminal's Ctrl-C (SIGINT to the foreground
   * group) reaches only the client, which cancels through the protocol and commits. The sidecar
   * still ends with its client: its stdin closes when the client dies (see main.ts).
   */
  ownProcessGroup?: boolean;
}

export interface SidecarHandle {
  connection: MessageConnection;
  process: ChildProcess;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<number | string>;
}

export class ProtocolMismatchError extends Error {}

/** The sidecar's entry script (compiled). */
export function sidecarEntry(): string {
  return path.join(__dirname, 'main.js');
}

export function spawnSidecar(opts: SpawnOptions = {}): SidecarHandle {
  const child = spawn(opts.execPath ?? process.execPath, [sidecarEntry()], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...allocatorEnv(), ...opts.env },
    detached: !!opts.ownProcessGroup,
  });
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, sig) => resolve(code ?? sig ?? -1));
    child.on('error', (e) => {
      opts.onStderr?.(`cannot start the sidecar with ${opts.execPath ?? process.execPath}: ${e.message}`);
      resolve(`spawn error: ${e.message}`);
    });
  });
  let buf = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      opts.onStderr?.(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  const connection = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  connection.listen();
  // A dead sidecar answers nothing: fail pending requests instead of leaving them hanging.
  void exited.then(() => setImmediate(() => connection.dispose()));
  return { connection, process: child, exited };
}

/** Sends `initialize` and checks the server speaks our protocol version. */
export async function initialize(c: MessageConnection, params: Omit<InitializeParams, 'protocolVersion'>): Promise<InitializeResult> {
  const r = await c.sendRequest(Initialize, { ...params, protocolVersion: PROTOCOL_VERSION });
  if (r.protocolVersion !== PROTOCOL_VERSION) {
    throw new ProtocolMismatchError(`sidecar speaks protocol ${r.protocolVersion}, this client ${PROTOCOL_VERSION}: reinstall so both come from one version`);
  }
  return r;
}

/** Asks the sidecar to finish its current commit and exit; kills it if it does not within `ms`. */
export async function shutdown(h: SidecarHandle, ms = 10000): Promise<void> {
  const timer = setTimeout(() => h.process.kill('SIGKILL'), ms);
  try {
    await Promise.race([h.connection.sendRequest(Shutdown), h.exited]);
  } catch {
    // the process may already be gone
  }
  await h.exited;
  clearTimeout(timer);
  h.connection.dispose();
}
