/**
 * A small, typed builder for ONNX ModelProto graphs. It names every intermediate value uniquely,
 * records initializers either inline (small constants) or as *external data* pointing into the
 * checkpoint's safetensors files (so weights are never copied into the model bytes), and encodes
 * the result with protobufjs. Opset 17 of the default domain; com.microsoft v1 for contrib ops.
 */
import { AttrType, ModelProto, OnnxDType } from './proto';

export { OnnxDType } from './proto';

/** An attribute value: integer, `{ f }` float, integer list, float list `{ floats }` or string. */
export type AttrValue = number | { f: number } | number[] | { floats: number[] } | string;

/** A weight that lives in a file next to (or reachable from) the model: ONNX external data. */
export interface ExternalTensor {
  /** Path relative to the external-data folder given to the session. */
  location: string;
  /** Byte offset of the tensor's first element inside that file. */
  offset: number;
  byteLength: number;
  dtype: OnnxDType;
  dims: number[];
}

export type Dim = number | string;

export const OPSET = 17;
export const MS_DOMAIN = 'com.microsoft';

interface ValueInfo {
  name: string;
  type: { tensorType: { elemType: number; shape: { dim: Array<{ dimValue?: number; dimParam?: string }> } } };
}

function valueInfo(name: string, dtype: OnnxDType, dims: Dim[]): ValueInfo {
  return {
    name,
    type: {
      tensorType: {
        elemType: dtype,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function encodeAttr(name: string, v: AttrValue): Record<string, unknown> {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: ${v} is not an integer (use { f })`);
    return { name, type: AttrType.INT, i: v };
  }
  if (typeof v === 'string') return { name, type: AttrType.STRING, s: Buffer.from(v, 'utf8') };
  if (Array.isArray(v)) return { name, type: AttrType.INTS, ints: v };
  if ('f' in v) return { name, type: AttrType.FLOAT, f: v.f };
  return { name, type: AttrType.FLOATS, floats: v.floats };
}

export class GraphBuilder {
  private readonly nodes: Record<string, unknown>[] = [];
  private readonly initializers: Record<string, unknown>[] = [];
  private readonly inputs: ValueInfo[] = [];
  private readonly outputs: ValueInfo[] = [];
  private readonly used = new Set<string>();
  private readonly domains = new Set<string>();
  private counter = 0;

  constructor(readonly name: string) {}

  private fresh(hint: string): string {
    let n = hint;
    while (this.used.has(n)) n = `${hint}_${++this.counter}`;
    this.used.add(n);
    return n;
  }

  input(name: string, dtype: OnnxDType, dims: Dim[]): string {
    if (this.used.has(name)) throw new Error(`graph ${this.name}: duplicate name ${name}`);
    this.used.add(name);
    this.inputs.push(valueInfo(name, dtype, dims));
    return name;
  }

  /** Declares `value` a graph output under `name` (an Identity node renames it when needed). */
  output(value: string, name: string, dtype: OnnxDType, dims: Dim[]): void {
    if (value !== name) {
      if (this.used.has(name)) throw new Error(`graph ${this.name}: duplicate name ${name}`);
      this.used.add(name);
      this.nodes.push({ opType: 'Identity', input: [value], output: [name], name: `out_${name}` });
    }
    this.outputs.push(valueInfo(name, dtype, dims));
  }

  external(name: string, t: ExternalTensor): string {
    const n = this.fresh(name);
    this.initializers.push({
      name: n,
      dims: t.dims,
      dataType: t.dtype,
      dataLocation: 1, // EXTERNAL
      externalData: [
        { key: 'location', value: t.location },
        { key: 'offset', value: String(t.offset) },
        { key: 'length', value: String(t.byteLength) },
      ],
    });
    return n;
  }

  constF32(name: string, data: ArrayLike<number>, dims: number[]): string {
    const n = this.fresh(name);
    const f = Float32Array.from(data);
    this.initializers.push({ name: n, dims, dataType: OnnxDType.FLOAT, rawData: new Uint8Array(f.buffer) });
    return n;
  }

  constU8(name: string, data: Uint8Array, dims: number[]): string {
    const n = this.fresh(name);
    this.initializers.push({ name: n, dims, dataType: OnnxDType.UINT8, rawData: data });
    return n;
  }

  constI64(name: string, data: number[], dims: number[] = [data.length]): string {
    const n = this.fresh(name);
    const b = new BigInt64Array(data.map((x) => BigInt(x)));
    this.initializers.push({ name: n, dims, dataType: OnnxDType.INT64, rawData: new Uint8Array(b.buffer) });
    return n;
  }

  /** Adds one node; returns its single output name. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, hint?: string): string {
    return this.opN(opType, inputs, 1, attrs, hint)[0];
  }

  /** Adds one node of ONNX Runtime's contrib domain (com.microsoft, version 1); returns its output. */
  msOp(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, hint?: string): string {
    this.domains.add(MS_DOMAIN);
    return this.opN(opType, inputs, 1, attrs, hint, MS_DOMAIN)[0];
  }

  /** Adds one node with `nOut` outputs. */
  opN(opType: string, inputs: string[], nOut: number, attrs: Record<string, AttrValue> = {}, hint?: string, domain = ''): string[] {
    const base = hint ?? opType.toLowerCase();
    const outs = Array.from({ length: nOut }, (_, i) => this.fresh(nOut === 1 ? base : `${base}_${i}`));
    this.nodes.push({
      opType,
      domain,
      input: inputs,
      output: outs,
      name: this.fresh(`n_${base}`),
      attribute: Object.entries(attrs).map(([k, v]) => encodeAttr(k, v)),
    });
    return outs;
  }

  toBytes(): Uint8Array {
    const model = {
      irVersion: 8,
      producerName: 'mplus-repo-memory',
      producerVersion: '1',
      opsetImport: [{ domain: '', version: OPSET }, ...[...this.domains].map((domain) => ({ domain, version: 1 }))],
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    };
    const err = ModelProto.verify(model);
    if (err) throw new Error(`graph ${this.name}: invalid ModelProto: ${err}`);
    return ModelProto.encode(ModelProto.fromObject(model)).finish();
  }
}
