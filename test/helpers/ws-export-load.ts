/**
 * Drives a WsSpanExporter like a busy application would: `concurrency` loops, each exporting fresh
 * realistic spans (unique random ids) and waiting for the export's callback before the next one.
 * Keeps the ledger a durability test needs: the span keys of every export that succeeded, the
 * number of exports by outcome, and the first few error messages.
 */
import { ExportResultCode } from '@opentelemetry/core';
import type { WsSpanExporter } from '../../client/ws-span-exporter.js';
import { realisticSpans, toReadableSpans } from './otlp-fixtures.js';
import { spanKey } from './otlp-load.js';

export interface ExportLoadOptions {
  exports: number; // total exports over all loops
  spansPerExport: number;
  concurrency: number;
  /** Checked before each new export: stop creating exports when it returns true. */
  stopWhen?: () => boolean;
}

export class ExportLoad {
  readonly acknowledged = new Set<string>();
  started = 0;
  succeeded = 0;
  failed = 0;
  readonly errors: string[] = [];
  readonly #exporter: WsSpanExporter;
  readonly #options: ExportLoadOptions;

  constructor(exporter: WsSpanExporter, options: ExportLoadOptions) {
    this.#exporter = exporter;
    this.#options = options;
  }

  /** Resolves when every loop has finished (each export got its callback). */
  async run(): Promise<void> {
    await Promise.all(Array.from({ length: this.#options.concurrency }, () => this.#loop()));
  }

  async #loop(): Promise<void> {
    const { exports, spansPerExport, stopWhen } = this.#options;
    while (this.started < exports && !stopWhen?.()) {
      this.started += 1;
      const spans = realisticSpans(spansPerExport, { nowMs: Date.now() });
      const result = await new Promise<{ code: ExportResultCode; error?: Error }>((resolve) =>
        this.#exporter.export(toReadableSpans({ spans }), resolve),
      );
      if (result.code === ExportResultCode.SUCCESS) {
        this.succeeded += 1;
        for (const span of spans) this.acknowledged.add(spanKey(span.traceId, span.spanId));
      } else {
        this.failed += 1;
        if (this.errors.length < 10) this.errors.push(result.error?.message ?? 'unknown');
      }
    }
  }
}
