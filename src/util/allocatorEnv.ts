/**
 * glibc malloc settings for a process that runs the engine (the sidecar; `mplus bench` and
 * `mplus trace`, which run it in-process). glibc reads them once, at process start, so they are
 * put in the environment of the process being started (client.ts, bin/mplus.js):
 *
 *   MALLOC_ARENA_MAX=2           ONNX Runtime's worker threads otherwise get arenas of their own
 *                                (up to 8 per core), each keeping the blocks freed in it;
 *   MALLOC_MMAP_THRESHOLD_=1 MiB  fixed: blocks of 1 MiB and more (a layer's activations, K/V) are
 *                                mmapped and returned to the system when freed. By default glibc
 *                                raises the threshold to the largest block freed so far (up to
 *                                32 MiB), after which such blocks stay in its heaps.
 *
 * Measured (BENCHMARKS.md, "mplus-8b shape"): `bench engine` at int4 peaks at 7,386 MiB instead of
 * 7,936; on `medium` the times are within this machine's noise. A value already set wins; other
 * platforms and C libraries (musl) are left as they are.
 */
export function allocatorEnv(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): Record<string, string> {
  if (platform !== 'linux') return {};
  const out: Record<string, string> = {};
  if (env.MALLOC_ARENA_MAX === undefined) out.MALLOC_ARENA_MAX = '2';
  if (env.MALLOC_MMAP_THRESHOLD_ === undefined) out.MALLOC_MMAP_THRESHOLD_ = String(1 << 20);
  return out;
}
