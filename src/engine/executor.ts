/**
 * Where graphs run. The engine only sees `Executor` and `GraphSession`, so an execution provider
 * (CPU now; CUDA/WebGPU or a native IoBinding addon later) can be swapped without touching the
 * M+ passes. Host tensors are float32 arrays with dims; a question's K/V cache may be held at
 * half width (HalfTensor: IEEE float16 bits — ONNX Runtime's JavaScript API has no bfloat16).
 */
import * as ort from 'onnxruntime-node';

export interface HostTensor {
  data: Float32Array;
  dims: number[];
}

/** IEEE float16 values as their 16-bit patterns. */
export interface HalfTensor {
  data: Uint16Array;
  dims: number[];
  half: true;
}

export type AnyTensor = HostTensor | HalfTensor;

export function isHalf(t: AnyTensor): t is HalfTensor {
  return (t as HalfTensor).half === true;
}

/** The float32 values of an output the graph declares float32 (a half one is a wiring bug). */
export function f32(t: AnyTensor): Float32Array {
  if (isHalf(t)) throw new TypeError('expected a float32 tensor, got float16');
  return t.data;
}

export interface GraphSession {
  /** Outputs come back in the type the graph declares: float32 → HostTensor, float16 → HalfTensor. */
  run(feeds: Record<string, AnyTensor>, outputs?: string[]): Promise<Record<string, AnyTensor>>;
  release(): Promise<void>;
}

export interface Executor {
  /** Human-readable device/provider actually in use, for logs. */
  readonly description: string;
  /** `model` is a serialized ModelProto; external data is resolved under `externalDir`. */
  createSession(name: string, model: Uint8Array, externalDir: string): Promise<GraphSession>;
}

export type Device = 'cpu' | 'cuda' | 'webgpu';

export class EngineDeviceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EngineDeviceError';
  }
}

class OrtSession implements GraphSession {
  constructor(private readonly s: ort.InferenceSession, readonly name: string) {}

  async run(feeds: Record<string, AnyTensor>, outputs?: string[]): Promise<Record<string, AnyTensor>> {
    const f: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) f[k] = isHalf(v) ? new ort.Tensor('float16', v.data, v.dims) : new ort.Tensor('float32', v.data, v.dims);
    const r = outputs ? await this.s.run(f, outputs) : await this.s.run(f);
    const out: Record<string, AnyTensor> = {};
    for (const [k, v] of Object.entries(r)) {
      if (v.type === 'float16') {
        // A runtime with Float16Array hands those back: keep the bits, as Uint16Array.
        const d = v.data as unknown as ArrayBufferView & { length: number };
        out[k] = { data: d instanceof Uint16Array ? d : new Uint16Array(d.buffer, d.byteOffset, d.length), dims: v.dims.slice(), half: true };
      }
      else if (v.type === 'float32') out[k] = { data: v.data as Float32Array, dims: v.dims.slice() };
      else throw new TypeError(`${this.name}: output ${k} is ${v.type}; the engine reads float32 and float16 only`);
      v.dispose?.();
    }
    return out;
  }

  async release(): Promise<void> {
    await this.s.release();
  }
}

export interface OrtExecutorOptions {
  device?: Device;
  /** Intra-op threads; default: ORT's choice (all cores). */
  threads?: number;
  /**
   * ORT's CPU memory arena (default off). The engine runs one session per layer, and each
   * session's arena keeps the largest activations it ever held: a question's prefill over θ at
   * mplus-8b shape (12,800 prefix rows) left ~0.5 GB in each of 32 arenas, and the process was
   * killed for memory at 22 GB even with 4-bit weights. Without the arena, freed activations go
   * back to malloc. MPLUS_ORT_ARENA=1 turns it back on (for measuring).
   */
  cpuArena?: boolean;
}

export class OrtExecutor implements Executor {
  readonly description: string;

  constructor(private readonly opts: OrtExecutorOptions = {}) {
    const device = opts.device ?? 'cpu';
    const available = ort.listSupportedBackends?.().map((b) => b.name) ?? ['cpu'];
    if (device !== 'cpu' && !available.includes(device)) {
      throw new EngineDeviceError(
        `execution provider "${device}" is not available in this onnxruntime-node build (available: ${available.join(', ')}); ` +
        'install the GPU build of onnxruntime-node (see README, "GPU") or choose device "cpu"',
      );
    }
    this.description = `onnxruntime-node ${ort.env.versions.common} ${device}`;
  }

  async createSession(name: string, model: Uint8Array, externalDir: string): Promise<GraphSession> {
    const device = this.opts.device ?? 'cpu';
    const options: ort.InferenceSession.SessionOptions = {
      executionProviders: [device],
      graphOptimizationLevel: 'all',
      extra: {
        session: {
          model_external_initializers_file_folder_path: externalDir,
          // Every session (one per layer, per retriever, heads) has its own intra-op pool, whose
          // workers spin after each run waiting for more work. The engine runs sessions one after
          // another, so a layer's run competed with the spinning workers of the layers before
          // it: on `medium` (8 layers, 2 cores) an injection took 725–815 ms spinning against
          // 225–284 ms not (BENCHMARKS.md, "Spinning thread pools"). MPLUS_ORT_SPIN=1 restores it.
          intra_op: { allow_spinning: process.env.MPLUS_ORT_SPIN === '1' ? '1' : '0' },
        },
      },
    };
    if (this.opts.threads) options.intraOpNumThreads = this.opts.threads;
    if (device === 'cpu') options.enableCpuMemArena = this.opts.cpuArena ?? process.env.MPLUS_ORT_ARENA === '1';
    try {
      return new OrtSession(await ort.InferenceSession.create(model, options), name);
    } catch (e) {
      throw new EngineDeviceError(`cannot create ONNX Runtime session for ${name} on ${device}: ${(e as Error).message}`);
    }
  }
}

const probes = new Map<Device, Promise<string | null>>();

/**
 * Whether an execution provider really works here: builds a one-node graph (Y = X + X) and runs
 * it on that provider. `listSupportedBackends()` only says what the binding was compiled for
 * (cuda is listed even when its provider library was never installed), so this is the test that
 * counts. Resolves null when it works, else the provider's error. Cached per process.
 */
export function probeProvider(device: Device): Promise<string | null> {
  let p = probes.get(device);
  if (!p) {
    p = (async () => {
      if (device === 'cpu') return null;
      const available = ort.listSupportedBackends?.().map((b) => b.name) ?? ['cpu'];
      if (!available.includes(device)) return `not built into this onnxruntime-node (available: ${available.join(', ')})`;
      // Imported here: the builder is only needed for this probe.
      const { GraphBuilder } = await import('./onnx/builder.js');
      const g = new GraphBuilder('probe');
      const x = g.input('X', 1, [2]);
      g.output(g.op('Add', [x, x]), 'Y', 1, [2]);
      try {
        const s = await ort.InferenceSession.create(g.toBytes(), { executionProviders: [device], logSeverityLevel: 4 });
        const r = await s.run({ X: new ort.Tensor('float32', Float32Array.from([1, 2]), [2]) });
        await s.release();
        const y = r.Y.data as Float32Array;
        return y[0] === 2 && y[1] === 4 ? null : 'ran but computed a wrong result';
      } catch (e) {
        return (e as Error).message.split('\n')[0];
      }
    })();
    probes.set(device, p);
  }
  return p;
}
