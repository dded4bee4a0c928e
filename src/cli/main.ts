/**
 * `mplus` — the headless entry point.
 *   mplus ingest <repo> | ask "<question>" | status | forget <path>… | serve   (sidecar clients)
 * A pure protocol client: it spawns the sidecar and speaks src/sidecar/protocol.ts (or, for
 * `serve`, is the sidecar). The developer tools (fixture, trace, bench) live in tools/ with their
 * own entry point; bin/mplus.js hands those commands there.
 * Exit codes: 0 success, 1 the work failed (message on stderr), 2 bad usage, 130 cancelled.
 */
import { runSidecar } from '../sidecar/main';
import { CliUsageError, cmdAsk, cmdForget, cmdIngest, cmdStatus, describeError } from './sidecarCommands';

const USAGE = `usage: mplus <command> [options]
  ingest [REPO]        feed a repository into memory (progress bar on a TTY; resumes after a crash)
  ask "QUESTION"       stream an answer from memory, then its sources as path:line-line
  status [REPO]        memory coverage, sizes, state and secrets kept out; --verify reads every stored row
  forget PATH…         drop files' or folders' memory; they stay out of memory (across restarts) until re-added from the editor
  serve                run the sidecar on stdin/stdout (what the extension spawns)
     common flags: --model DIR (or MPLUS_MODEL; default: the bundled models/mplus-lookup/ when present) --store DIR --device auto|cuda|webgpu|cpu --precision f32|bf16|int8|int4 --json --repo DIR
                  --rebuild (move a damaged or other-model store aside and start empty)
  fixture | trace | bench …   developer tools (tools/main.ts; 'mplus bench' prints their usage)
exit codes: 0 ok, 1 failure, 2 usage, 130 cancelled`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'ingest': return await cmdIngest(rest);
      case 'ask': return await cmdAsk(rest);
      case 'status': return await cmdStatus(rest);
      case 'forget': return await cmdForget(rest);
      case 'serve':
        runSidecar();
        return await new Promise<number>(() => undefined); // the sidecar exits the process itself
      case undefined: case 'help': case '--help': case '-h':
        console.log(USAGE);
        return cmd === undefined ? 2 : 0;
      default: throw new CliUsageError(`unknown command ${JSON.stringify(cmd)}`);
    }
  } catch (e) {
    const err = e as Error & { code?: string };
    if (e instanceof CliUsageError || (typeof err.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS'))) {
      console.error(`mplus: ${err.message}\n${USAGE}`);
      return 2;
    }
    console.error(`mplus ${cmd}: ${describeError(err)}`);
    if (process.env.MPLUS_DEBUG) console.error(err.stack);
    return 1;
  }
}
