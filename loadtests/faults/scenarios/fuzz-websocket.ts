/**
 * Fuzzing of the WebSocket frame handler through real connections to a spawned server (reliability
 * catalog row 28, docs/websocket-protocol.md): frames carrying the decoder fuzz inputs (protobuf in
 * binary frames, JSON in text frames), fresh valid requests that commit, and envelope faults (short
 * or oversized frames, ids over 2^53, text without an id, invalid UTF-8, a reused id, no
 * subprotocol). Passes when every frame gets one ack with 200/400/429/503, every fault its close
 * code, nothing else closes a connection, the server stays up and logs nothing at error level.
 */
import { fuzzWebSocket } from '../fuzz/ws-fuzz.js';
import { startTargetServer } from '../hostile/target-server.js';
import type { FaultMode, Scenario, ScenarioContext, ScenarioResult } from '../scenario.js';

const FRAMES: Record<FaultMode, number> = { smoke: 3000, full: 1_000_000 };
const MAX_FRAME_BYTES = 1024 * 1024;
const RUN_SEED = 20_261_124;

async function run(context: ScenarioContext): Promise<ScenarioResult> {
  const started = Date.now();
  const frames = FRAMES[context.mode];
  const server = await startTargetServer({ WS_MAX_FRAME_BYTES: String(MAX_FRAME_BYTES) });
  const failures: string[] = [];
  const figures: Record<string, number | string> = {};
  let peakRssMb = 0;
  let statuses: Record<string, number> = {};
  try {
    context.log(`ws fuzz: ${frames} frames over 8 connections`);
    const result = await fuzzWebSocket({
      url: server.url,
      frames,
      connections: 8,
      window: 32,
      ackTimeoutMs: 15_000,
      faultShare: 0.005,
      maxFrameBytes: MAX_FRAME_BYTES,
      runSeed: RUN_SEED,
      log: context.log,
    });
    peakRssMb = server.peakRssMb();
    failures.push(...result.findings);
    if (result.frames < frames * 0.99) failures.push(`only ${result.frames} of ${frames} frames were acked`);
    statuses = { ...result.acks };
    for (const [name, n] of Object.entries(result.faults)) statuses[`fault ${name}`] = n;
    figures.frames = result.frames;
    figures['frames/s'] = Math.round(result.frames / result.seconds);
    figures['envelope faults'] = Object.values(result.faults).reduce((a, b) => a + b, 0);
    figures['max ack ms'] = Math.round(result.maxAckMs);
    for (const [status, n] of Object.entries(result.acks)) figures[`acks ${status}`] = n;
  } finally {
    if (!server.alive()) failures.push(`the server died: ${server.process.stderr().slice(-500)}`);
    failures.push(...server.errorLogs().map((line) => `logged at error level: ${line}`));
    await server.stop();
  }
  return {
    id: scenario.id,
    title: scenario.title,
    catalogRows: scenario.catalogRows,
    statuses,
    peakRssMb: Math.round(peakRssMb * 10) / 10,
    figures,
    failures,
    durationSeconds: Math.round((Date.now() - started) / 100) / 10,
  };
}

const scenario: Scenario = {
  id: 'fuzz-websocket',
  title: 'Fuzzing the WebSocket frame handler over real connections (fuzzed bodies, envelope faults)',
  catalogRows: [28],
  run,
};

export default scenario;
