/**
 * "Know before you start": what this model and this workspace need, against what the machine has
 * — the model's size against free memory, the device that runs it, the memory store's disk use
 * and the reading time for this workspace. Shown in the status tooltip, the consent question and
 * Check Requirements (the walkthrough's hardware step). No `vscode` import: tested directly.
 */
import type { DeviceInfo, FeedEstimate } from '../sidecar/protocol';

export interface Machine {
  totalMemBytes: number;
  freeMemBytes: number;
  /** Free disk where the memory store goes, bytes; null when unknown. */
  freeDiskBytes: number | null;
}

export interface RequirementsInput {
  /**
   * Bytes the model takes in memory (sidecar/modelSize.ts: at `precision`, as the engine holds
   * it); null when no usable model is set.
   */
  modelBytes: number | null;
  /** The precision modelBytes is at (mplus.precision), named in the line when given. */
  precision?: string;
  /** The device M+ runs on (after it started), or the one asked for. */
  device: DeviceInfo | null;
  deviceSetting: string;
  machine: Machine;
  estimate: FeedEstimate | null;
  /** Tokens per second measured on this machine before (remembered), when this session has none. */
  rememberedRate: number | null;
}

export function gb(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GB` : `${Math.max(1, Math.round(bytes / 2 ** 20))} MB`;
}

export function roughDuration(seconds: number): string {
  if (seconds < 90) {
    const n = Math.max(1, Math.round(seconds));
    return n === 1 ? '1 second' : `${n} seconds`;
  }
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} minutes`;
  return `${(seconds / 3600).toFixed(1)} hours`;
}

/** The time to read what is left, from this session's rate or a remembered one; null when none is known. */
export function feedSeconds(e: FeedEstimate, rememberedRate: number | null): number | null {
  if (e.feedSeconds !== null) return e.feedSeconds;
  if (!rememberedRate) return null;
  // estimate.feedSeconds is null only before any feeding in this process: all of it is left
  return e.tokens / rememberedRate;
}

/** One line per requirement, plain words; `warnings` are the ones that do not fit. */
export function requirementLines(x: RequirementsInput): { lines: string[]; warnings: string[] } {
  const lines: string[] = [];
  const warnings: string[] = [];
  if (x.modelBytes !== null) {
    // Weights are loaded once; on CPU they live in RAM, and M+ needs some room besides them.
    const onCpu = !x.device || x.device.used === 'cpu';
    const need = x.modelBytes * 1.2;
    const at = x.precision ? ` at ${x.precision}` : '';
    const line = `Model: ${gb(x.modelBytes)} of weights${at}; this machine has ${gb(x.machine.totalMemBytes)} of memory (${gb(x.machine.freeMemBytes)} free).`;
    lines.push(line);
    if (onCpu && need > x.machine.totalMemBytes) warnings.push(`The model needs about ${gb(need)} of memory, more than this machine has: it will not run here.`);
    else if (onCpu && need > x.machine.freeMemBytes) warnings.push(`The model needs about ${gb(need)} of memory and ${gb(x.machine.freeMemBytes)} is free: close other programs or expect swapping.`);
    if (x.device?.used !== 'cpu' && x.device?.memoryBytes && need > x.device.memoryBytes) {
      warnings.push(`The model needs about ${gb(need)} and the GPU has ${gb(x.device.memoryBytes)}.`);
    }
  }
  lines.push(x.device ? `Runs on: ${x.device.description}.` : `Runs on: ${x.deviceSetting === 'auto' ? 'the GPU when one is usable, else the CPU' : x.deviceSetting}.`);
  if (x.estimate) {
    const e = x.estimate;
    lines.push(`This workspace: ${e.files.toLocaleString('en-US')} files, about ${e.tokens.toLocaleString('en-US')} tokens of text.`);
    let mem = `Its memory: about ${gb(e.storeBytes)} on disk`;
    if (x.machine.freeDiskBytes !== null) {
      mem += ` (${gb(x.machine.freeDiskBytes)} free)`;
      if (e.storeBytes > x.machine.freeDiskBytes) warnings.push(`Memory for this workspace needs about ${gb(e.storeBytes)} of disk and ${gb(x.machine.freeDiskBytes)} is free: set a disk budget (mplus.storeBudgetGB) or free space.`);
    }
    const secs = feedSeconds(e, x.rememberedRate);
    lines.push(`${mem}; reading it takes ${secs === null ? 'a time M+ measures once it starts' : `about ${roughDuration(secs)}`}.`);
  }
  return { lines, warnings };
}
