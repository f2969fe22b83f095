/**
 * A SpanExporter around a real one (e.g. the OTLP protobuf exporter) that keeps the ledger a
 * durability test needs: which spans an export() acknowledged with ExportResultCode.SUCCESS (the
 * exporter saw a 2xx), and every export's outcome with its timing. It changes nothing about what
 * the inner exporter sends or how it retries.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { spanKey } from './otlp-load.js';

export interface ExportRecord {
  spans: number;
  startedAt: number;
  finishedAt?: number;
  code?: ExportResultCode;
  /** error.code of a failed export: an HTTP status for OTLPExporterError, an errno for network errors. */
  errorCode?: string | number;
  errorMessage?: string;
}

/** Shared by several RecordingExporters so that one test sees one ledger. */
export class ExportLedger {
  readonly acknowledged = new Map<string, number>(); // span key → Date.now() of the ack
  readonly exports: ExportRecord[] = [];

  acknowledgedBefore(time: number): number {
    let n = 0;
    for (const at of this.acknowledged.values()) if (at < time) n += 1;
    return n;
  }
}

export class RecordingExporter implements SpanExporter {
  readonly #inner: SpanExporter;
  readonly #ledger: ExportLedger;

  constructor(inner: SpanExporter, ledger: ExportLedger) {
    this.#inner = inner;
    this.#ledger = ledger;
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    const record: ExportRecord = { spans: spans.length, startedAt: Date.now() };
    this.#ledger.exports.push(record);
    this.#inner.export(spans, (result) => {
      record.finishedAt = Date.now();
      record.code = result.code;
      if (result.code === ExportResultCode.SUCCESS) {
        for (const span of spans) {
          const { traceId, spanId } = span.spanContext();
          this.#ledger.acknowledged.set(spanKey(traceId, spanId), record.finishedAt);
        }
      } else if (result.error) {
        record.errorCode = (result.error as { code?: string | number }).code;
        record.errorMessage = result.error.message;
      }
      resultCallback(result);
    });
  }

  shutdown(): Promise<void> {
    return this.#inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush?.() ?? Promise.resolve();
  }
}
