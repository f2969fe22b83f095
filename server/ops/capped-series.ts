/**
 * Counters and histograms that share one bounded set of label sets, for the span-derived metrics
 * (span-metrics.ts). Two things prom-client's own metrics do not do:
 * - weights: a span that stands for 10 (sampling) adds 10 to a counter and to a histogram's
 *   buckets, _count and _sum (prom-client's Histogram.observe counts one per call);
 * - a cap: at most `maxSeries` label sets. The first label sets seen keep their series; spans of
 *   any new label set past the cap are recorded in the overflow series (`overflowValues`), so
 *   span names with ids in them cannot grow memory or Prometheus' series without bound.
 *
 * State: the label sets' values, reached through a tree with one level per label (a lookup per span
 * is a few Map.get calls on strings the decoder already holds, with no key string built and hashed),
 * which only grows up to the cap (and the overflow series).
 * Registered in the injected registry as ordinary metrics (text format and registry.getSingleMetric).
 */
import type { Metric, Registry } from 'prom-client';

export type FamilySpec =
  | { kind: 'counter'; name: string; help: string }
  | { kind: 'histogram'; name: string; help: string; buckets: readonly number[] };

/** The values of one label set: one number per counter, one histogram per histogram family. */
export interface SeriesValues {
  readonly labels: readonly string[];
  readonly counters: Float64Array;
  readonly histograms: WeightedHistogramValues[];
}

export class WeightedHistogramValues {
  /** Weight per bucket (not cumulative), the last one +Inf. */
  readonly buckets: Float64Array;
  count = 0;
  sum = 0;

  constructor(readonly bounds: readonly number[]) {
    this.buckets = new Float64Array(bounds.length + 1);
  }

  observe(value: number, weight: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.buckets[i] += weight;
    this.count += weight;
    this.sum += value * weight;
  }
}

export interface CappedSeriesOptions {
  registry: Registry;
  labelNames: readonly string[];
  families: readonly FamilySpec[];
  maxSeries: number;
  /** The label values to record into once the cap is reached (computed from the refused ones). */
  overflowValues: (values: readonly string[]) => string[];
}

/** One level of the label tree: the next label's values, and the series ending here. */
interface LabelNode {
  readonly next: Map<string, LabelNode>;
  series: SeriesValues | undefined;
}

function newNode(): LabelNode {
  return { next: new Map(), series: undefined };
}

export class CappedSeries {
  readonly #options: CappedSeriesOptions;
  #root = newNode();
  /** Every series, in creation order (the exposition order). */
  #all: SeriesValues[] = [];
  readonly #counterCount: number;
  readonly #histogramBounds: (readonly number[])[];
  #normal = 0; // series not created as overflow
  #overflowed = 0; // observations recorded into an overflow series

  constructor(options: CappedSeriesOptions) {
    this.#options = options;
    this.#counterCount = options.families.filter((f) => f.kind === 'counter').length;
    this.#histogramBounds = options.families.flatMap((f) => (f.kind === 'histogram' ? [f.buckets] : []));
    let counterIndex = 0;
    let histogramIndex = 0;
    for (const family of options.families) {
      const index = family.kind === 'counter' ? counterIndex++ : histogramIndex++;
      options.registry.registerMetric(this.#collector(family, index) as unknown as Metric);
    }
  }

  /** Label sets held (overflow series included). */
  get size(): number {
    return this.#all.length;
  }

  /** Observations that went to an overflow series because the cap was reached. */
  get overflowed(): number {
    return this.#overflowed;
  }

  /** The series of these label values (in labelNames order), or the overflow series past the cap. */
  series(values: readonly string[]): SeriesValues {
    const found = this.#find(values);
    if (found !== undefined) return found;
    if (this.#normal < this.#options.maxSeries) {
      this.#normal++;
      return this.#create(values);
    }
    this.#overflowed++;
    const overflow = this.#options.overflowValues(values);
    return this.#find(overflow) ?? this.#create(overflow);
  }

  #find(values: readonly string[]): SeriesValues | undefined {
    let node: LabelNode | undefined = this.#root;
    for (let i = 0; i < values.length && node !== undefined; i++) node = node.next.get(values[i]);
    return node?.series;
  }

  #create(labels: readonly string[]): SeriesValues {
    let node = this.#root;
    for (const value of labels) {
      let child = node.next.get(value);
      if (child === undefined) node.next.set(value, (child = newNode()));
      node = child;
    }
    const series: SeriesValues = {
      labels: [...labels],
      counters: new Float64Array(this.#counterCount),
      histograms: this.#histogramBounds.map((bounds) => new WeightedHistogramValues(bounds)),
    };
    node.series = series;
    this.#all.push(series);
    return series;
  }

  #labelsOf(series: SeriesValues): Record<string, string> {
    const labels: Record<string, string> = {};
    this.#options.labelNames.forEach((name, i) => (labels[name] = series.labels[i]));
    return labels;
  }

  /** A prom-client compatible metric object over one family of the shared series. */
  #collector(family: FamilySpec, index: number): object {
    const base = { name: family.name, help: family.help, type: family.kind, aggregator: 'sum' as const };
    const get = async () => {
      const values: { metricName?: string; labels: Record<string, string | number>; value: number }[] = [];
      for (const series of this.#all) {
        const labels = this.#labelsOf(series);
        if (family.kind === 'counter') {
          values.push({ labels, value: series.counters[index] });
          continue;
        }
        const histogram = series.histograms[index];
        let cumulative = 0;
        histogram.buckets.forEach((weight, i) => {
          cumulative += weight;
          const le = i < family.buckets.length ? family.buckets[i] : '+Inf';
          values.push({ metricName: `${family.name}_bucket`, labels: { ...labels, le }, value: cumulative });
        });
        values.push({ metricName: `${family.name}_sum`, labels, value: histogram.sum });
        values.push({ metricName: `${family.name}_count`, labels, value: histogram.count });
      }
      return { ...base, values };
    };
    const reset = () => {
      this.#root = newNode();
      this.#all = [];
      this.#normal = 0;
    };
    return { ...base, get, reset };
  }
}
