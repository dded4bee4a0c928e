/**
 * Chooses the execution provider for a requested device and says what it chose and why.
 */
import * as os from 'os';
import * as ort from 'onnxruntime-node';
import { Device, probeProvider } from '../engine/executor';
import type { DeviceInfo, DeviceRequest } from './protocol';

export class DeviceUnavailableError extends Error {}

/**
 * `auto`: the first GPU provider that passes a real probe (cuda, then webgpu), else the CPU —
 * saying why each GPU provider was passed over. An explicit device that fails its probe is a
 * DeviceUnavailableError naming the provider's own error, unless the CPU fallback was allowed.
 */
export async function selectDevice(requested: DeviceRequest, allowCpuFallback: boolean, probe = probeProvider): Promise<{ device: Device; info: DeviceInfo; warning?: string }> {
  let used: Device = 'cpu';
  let warning: string | undefined;
  if (requested === 'auto') {
    const skipped: string[] = [];
    for (const d of ['cuda', 'webgpu'] as const) {
      const why = await probe(d);
      if (why === null) {
        used = d;
        break;
      }
      skipped.push(`${d}: ${why}`);
    }
    if (used === 'cpu' && skipped.length) warning = `no GPU execution provider works here (${skipped.join('; ')}); using the CPU`;
  } else if (requested !== 'cpu') {
    const why = await probe(requested);
    if (why === null) used = requested;
    else if (allowCpuFallback) warning = `device "${requested}" is not usable (${why}); falling back to the CPU as allowed`;
    else {
      throw new DeviceUnavailableError(
        `device "${requested}" is not usable: ${why}. ` +
        'Install the GPU provider (README, "Using a real checkpoint"), choose "auto" or "cpu", or allow the CPU fallback.',
      );
    }
  }
  return {
    device: used,
    info: {
      requested,
      used,
      description: `onnxruntime-node ${ort.env.versions.common}, ${used} execution provider` + (used === 'cpu' ? `, ${os.cpus().length} cores` : ''),
      memoryBytes: used === 'cpu' ? os.totalmem() : null,
    },
    warning,
  };
}
