/**
 * The frame three of our binary files share — a Θ segment (MPSEG001), a quantized-weights cache
 * (MPQUANT1) and a state file (MPSTATE1):
 *
 *   8-byte magic | u32 LE header length H | H bytes of header JSON (UTF-8) | zero pad to `align` | data
 *
 * One writer and one reader of that head, so its checks (magic, a length that fits the file,
 * JSON) are made the same way for all three. Each format keeps its own magic, alignment, header
 * type and what it does with a bad file (the store throws, the cache rebuilds); this module only
 * says what is wrong, in a sentence that fits after the file's name. In the util layer because
 * memory (segments, state) and engine (cache) both use it. No imports but Node's fs.
 */
import * as fs from 'fs';

export interface FrameFormat {
  /** Exactly 8 Latin-1 characters. */
  magic: string;
  /** The data starts at the first multiple of this after the header. */
  align: number;
  /** A longer header means a damaged length field: refused before allocating it. */
  maxHeaderBytes: number;
  /** What the file is, for "not a … (bad magic)". */
  what: string;
}

export interface FrameHead {
  /** The parsed header JSON, unchecked beyond being an object: the format validates its fields. */
  header: Record<string, unknown>;
  /** Byte length of the header JSON. */
  headerBytes: number;
  /** Byte offset of the data (the end of the padding). */
  dataStart: number;
}

/** A file whose head cannot be read; the message says why (the caller names the file). */
export class FrameError extends Error {}

const PREFIX = 12;

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** magic, length, header JSON and the zero padding: everything before the data. */
export function encodeFrameHead(format: FrameFormat, header: object): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const head = Buffer.alloc(align(PREFIX + json.length, format.align));
  head.write(format.magic, 0, 8, 'latin1');
  head.writeUInt32LE(json.length, 8);
  json.copy(head, PREFIX);
  return head;
}

/** `read(buf, position)` fills buf from that file position and returns the bytes it read. */
function decodeFrameHead(read: (buf: Buffer, position: number) => number, size: number, format: FrameFormat): FrameHead {
  const pre = Buffer.alloc(PREFIX);
  if (size < PREFIX || read(pre, 0) !== PREFIX) throw new FrameError(`${size} bytes is too short to be a ${format.what} (truncated?)`);
  if (pre.toString('latin1', 0, 8) !== format.magic) throw new FrameError(`not a ${format.what} (bad magic)`);
  const hlen = pre.readUInt32LE(8);
  if (hlen > format.maxHeaderBytes) throw new FrameError(`header length ${hlen} is implausible (at most ${format.maxHeaderBytes})`);
  if (PREFIX + hlen > size) throw new FrameError(`header length ${hlen} does not fit the ${size}-byte file (truncated?)`);
  const json = Buffer.alloc(hlen);
  if (read(json, PREFIX) !== hlen) throw new FrameError('short read of the header');
  let header: unknown;
  try {
    header = JSON.parse(json.toString('utf8'));
  } catch {
    throw new FrameError('its header is not valid JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new FrameError('its header is not a JSON object');
  return { header: header as Record<string, unknown>, headerBytes: hlen, dataStart: align(PREFIX + hlen, format.align) };
}

/** Reads the head of an open file of `size` bytes. Throws FrameError. */
export function readFrameHead(fd: number, size: number, format: FrameFormat): FrameHead {
  return decodeFrameHead((buf, position) => fs.readSync(fd, buf, 0, buf.length, position), size, format);
}

/** The head of a file held whole in memory. Throws FrameError. */
export function parseFrameHead(file: Buffer, format: FrameFormat): FrameHead {
  return decodeFrameHead((buf, position) => file.copy(buf, 0, position, position + buf.length), file.length, format);
}
