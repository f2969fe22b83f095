/**
 * Fuzzing of the two OTLP decoders, in process (reliability catalog row 28): random bytes,
 * mutations of valid encodings (bit flips, truncation, varint and length corruption, splicing) and
 * structure-aware generated requests, each decoded by the pure decode function and checked by the
 * decode oracle (test/helpers/decode-oracle.ts). Passes with no crash, no hang, no contract
 * violation, every input decoded within MAX_DECODE_MS, and a healthy mix of accepted and refused
 * inputs (a fuzzer whose inputs all fail at the first byte tests nothing).
 */
import { fuzzDecoder } from '../fuzz/decoder-fuzz.js';
import type { FaultMode, Scenario, ScenarioContext, ScenarioResult } from '../scenario.js';

const INPUTS: Record<FaultMode, number> = { smoke: 5000, full: 1_000_000 };
const RUN_SEED = 20_261_123;
const HANG_MS = 10_000;
const SLOW_MS = 100;
/** A decode this slow on one input counts as a (soft) hang. */
const MAX_DECODE_MS = 2000;
const MAX_HEAP_MB = 512;
/** Each outcome class (decoded to rows / refused with a 400) must cover this share of inputs. */
const MIN_SHARE = 0.01;

function decoderScenario(format: 'protobuf' | 'json'): Scenario {
  const scenario: Scenario = {
    id: `fuzz-${format}-decoder`,
    title: `Fuzzing the OTLP ${format === 'json' ? 'JSON' : 'protobuf'} decoder in process (random, mutated, generated inputs)`,
    catalogRows: [23, 24, 26, 27, 28, 29],
    async run(context: ScenarioContext): Promise<ScenarioResult> {
      const inputs = INPUTS[context.mode];
      context.log(`fuzz ${format}: ${inputs} inputs, seed ${RUN_SEED}`);
      const result = await fuzzDecoder({
        format,
        inputs,
        runSeed: RUN_SEED,
        hangMs: HANG_MS,
        slowMs: SLOW_MS,
        maxHeapMb: MAX_HEAP_MB,
        log: context.log,
      });
      const failures: string[] = [];
      for (const crash of result.crashes) {
        failures.push(`input ${crash.index} crashed the decoder (${crash.error}); saved as ${crash.saved}`);
      }
      for (const hang of result.hangs) {
        failures.push(`input ${hang.index} hung the decoder for ${HANG_MS} ms; saved as ${hang.saved}`);
      }
      result.violations.forEach((v, i) =>
        failures.push(
          `input ${v.index} (${v.kind}) broke the decode contract: ${v.problem}; saved as ${result.saved[i]}`,
        ),
      );
      if (result.maxDecodeMs > MAX_DECODE_MS) {
        failures.push(`slowest input took ${Math.round(result.maxDecodeMs)} ms to decode`);
      }
      if (result.inputs < inputs) failures.push(`only ${result.inputs} of ${inputs} inputs ran`);
      const ok = result.outcomes.ok ?? 0;
      const refused = result.inputs - ok - (result.outcomes.violation ?? 0);
      if (ok < MIN_SHARE * result.inputs) {
        failures.push(`only ${ok} inputs decoded to a result: the inputs are too broken`);
      }
      if (refused < MIN_SHARE * result.inputs) {
        failures.push(`only ${refused} inputs were refused: the inputs are too tame`);
      }
      const figures: Record<string, number | string> = {
        inputs: result.inputs,
        'inputs/s': Math.round(result.inputs / result.seconds),
        'decoded to rows': ok,
        'spans decoded': result.spansDecoded,
        'max decode ms': Math.round(result.maxDecodeMs * 10) / 10,
        [`inputs over ${SLOW_MS} ms`]: result.slow.length,
        'largest input bytes': result.maxInputBytes,
        crashes: result.crashes.length,
        hangs: result.hangs.length,
        violations: result.violations.length,
      };
      for (const [code, n] of Object.entries(result.outcomes)) if (code !== 'ok') figures[code] = n;
      return {
        id: scenario.id,
        title: scenario.title,
        catalogRows: scenario.catalogRows,
        statuses: {},
        figures,
        failures,
        durationSeconds: Math.round(result.seconds * 10) / 10,
      };
    },
  };
  return scenario;
}

export default [decoderScenario('protobuf'), decoderScenario('json')];
