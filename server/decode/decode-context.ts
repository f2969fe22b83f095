/**
 * The state of one decodeExportRequest call: options, counters, the rows built so far, the current
 * resource and scope, and scratch lists reused for every span. It lives for one request only, so
 * the hot path allocates rows and their strings, not bookkeeping.
 */
import type { DecodeLimits, DecodeOptions, RejectReason, SanitizeKind, SpanRow, TimeWindow } from './types.js';
import { REJECT_REASONS, SANITIZE_KINDS } from './types.js';
import { AttributeList } from './any-value.js';
import type { SpanDraft } from './span-rows.js';
import { createSpanDraft } from './span-rows.js';
import type { AttributeSharing } from './attribute-sharing.js';

export class DecodeContext {
  readonly limits: DecodeLimits;
  readonly window: TimeWindow;
  readonly sharing: AttributeSharing | undefined;
  readonly rows: SpanRow[] = [];
  spanCount = 0;
  readonly rejected: Record<RejectReason, number> = {
    invalid_trace_id: 0,
    invalid_span_id: 0,
    invalid_parent_span_id: 0,
    start_time_too_old: 0,
    start_time_too_new: 0,
    end_before_start: 0,
    end_time_too_new: 0,
  };
  readonly sanitized: Record<SanitizeKind, number> = {
    invalid_utf8: 0,
    nul_byte: 0,
    lone_surrogate: 0,
    value_truncated: 0,
    attributes_dropped: 0,
    events_dropped: 0,
    links_dropped: 0,
  };
  /** JSON only: the body was not valid UTF-8, so strings holding U+FFFD are counted invalid_utf8. */
  bodyHadInvalidUtf8 = false;

  // The resource and scope every span of the current ScopeSpans shares.
  serviceName = '';
  resourceAttributes = '{}';
  scopeName = '';
  scopeVersion = '';
  scopeAttributes = '{}';
  /** Approximate bytes of the shared resource and scope strings, added to every row's sizeBytes. */
  sharedSizeBytes = 0;

  /** The span being decoded; reset for every span. */
  readonly draft: SpanDraft = createSpanDraft();

  /** Set by AnyValue readers: the JSON text of the AnyValue just read if it was a string, else null. */
  lastStringJson: string | null = null;

  readonly spanAttributes: AttributeList;
  readonly eventAttributes: AttributeList;
  readonly linkAttributes: AttributeList;
  readonly resourceAttributeList: AttributeList;
  readonly scopeAttributeList: AttributeList;
  /** kvlist values nested in AnyValues, one list per nesting level (siblings reuse it). */
  private readonly kvlistLists: AttributeList[] = [];

  constructor(options: DecodeOptions) {
    this.limits = options.limits;
    this.window = options.window;
    this.sharing = options.sharing;
    const max = options.limits.maxAttributesPerSpan;
    this.spanAttributes = new AttributeList(max);
    this.eventAttributes = new AttributeList(max);
    this.linkAttributes = new AttributeList(max);
    this.resourceAttributeList = new AttributeList(max);
    this.scopeAttributeList = new AttributeList(max);
  }

  /**
   * Writes the span attributes read into spanAttributes to the draft: split into the shared set
   * and the row's own pairs when sharing is on, else all of them as the row's own.
   */
  writeSpanAttributes(): void {
    const d = this.draft;
    if (this.sharing === undefined) {
      d.attributes = this.spanAttributes.toJson();
      return;
    }
    this.spanAttributes.writeSplit(this.sharing, d);
  }

  /** A cleared, uncapped list for a kvlist AnyValue at `depth` (1 = top-level container). */
  kvlistAt(depth: number): AttributeList {
    let list = this.kvlistLists[depth];
    if (list === undefined) {
      list = new AttributeList(Number.MAX_SAFE_INTEGER);
      this.kvlistLists[depth] = list;
    }
    list.reset();
    return list;
  }

  resetResource(): void {
    this.serviceName = '';
    this.resourceAttributes = '{}';
  }

  resetScope(): void {
    this.scopeName = '';
    this.scopeVersion = '';
    this.scopeAttributes = '{}';
  }

  updateSharedSize(): void {
    this.sharedSizeBytes =
      this.serviceName.length +
      this.resourceAttributes.length +
      this.scopeName.length +
      this.scopeVersion.length +
      this.scopeAttributes.length;
  }

  countSanitized(kind: SanitizeKind, n = 1): void {
    this.sanitized[kind] += n;
  }

  countDroppedAttributes(dropped: number): void {
    if (dropped > 0) this.sanitized.attributes_dropped += dropped;
  }

  countRejected(reason: RejectReason): void {
    this.rejected[reason]++;
  }

  rejectedCounts(): Partial<Record<RejectReason, number>> {
    const out: Partial<Record<RejectReason, number>> = {};
    for (const reason of REJECT_REASONS) if (this.rejected[reason] > 0) out[reason] = this.rejected[reason];
    return out;
  }

  sanitizedCounts(): Partial<Record<SanitizeKind, number>> {
    const out: Partial<Record<SanitizeKind, number>> = {};
    for (const kind of SANITIZE_KINDS) if (this.sanitized[kind] > 0) out[kind] = this.sanitized[kind];
    return out;
  }

  /** e.g. "2 spans rejected: 1 invalid_span_id, 1 start_time_too_old"; '' when none. */
  rejectMessage(): string {
    let total = 0;
    const parts: string[] = [];
    for (const reason of REJECT_REASONS) {
      const n = this.rejected[reason];
      if (n > 0) {
        total += n;
        parts.push(`${n} ${reason}`);
      }
    }
    if (total === 0) return '';
    return `${total} ${total === 1 ? 'span' : 'spans'} rejected: ${parts.join(', ')}`;
  }
}
