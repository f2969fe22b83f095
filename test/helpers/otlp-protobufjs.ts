/**
 * A protobufjs schema of the OTLP trace messages, written from the opentelemetry-proto .proto files
 * (field numbers and types only), used as an independent encoder / decoder in tests and in
 * loadtests/bench-decode.ts. Field names are the lowerCamelCase JSON names, as protobufjs uses them.
 *
 * `createOtlpRoot({ withUnknownFields: true })` adds fields OTLP does not define (numbers ≥ 100 and
 * one in AnyValue) of every wire type, to check that a decoder skips what it does not know.
 */
import protobuf from 'protobufjs';

type FieldSet = Record<string, { type: string; id: number; rule?: 'repeated' }>;

const COMMON = 'opentelemetry.proto.common.v1';
const TRACE = 'opentelemetry.proto.trace.v1';

/** Fields of every wire type that OTLP does not define. */
const UNKNOWN_FIELDS: FieldSet = {
  futureVarint: { type: 'uint64', id: 100 },
  futureFixed64: { type: 'fixed64', id: 101 },
  futureString: { type: 'string', id: 102 },
  futureFixed32: { type: 'fixed32', id: 103 },
  futureMessage: { type: `${COMMON}.KeyValue`, id: 104 },
  futureSint: { type: 'sint32', id: 536870911 }, // the largest field number
};

function schema(withUnknownFields: boolean): protobuf.INamespace {
  const extra = withUnknownFields ? UNKNOWN_FIELDS : {};
  const repeated = (type: string, id: number) => ({ rule: 'repeated' as const, type, id });
  return {
    nested: {
      opentelemetry: {
        nested: {
          proto: {
            nested: {
              common: {
                nested: {
                  v1: {
                    nested: {
                      AnyValue: {
                        oneofs: {
                          value: {
                            oneof: [
                              'stringValue',
                              'boolValue',
                              'intValue',
                              'doubleValue',
                              'arrayValue',
                              'kvlistValue',
                              'bytesValue',
                            ],
                          },
                        },
                        fields: {
                          stringValue: { type: 'string', id: 1 },
                          boolValue: { type: 'bool', id: 2 },
                          intValue: { type: 'int64', id: 3 },
                          doubleValue: { type: 'double', id: 4 },
                          arrayValue: { type: 'ArrayValue', id: 5 },
                          kvlistValue: { type: 'KeyValueList', id: 6 },
                          bytesValue: { type: 'bytes', id: 7 },
                          ...(withUnknownFields ? { futureField: { type: 'string', id: 50 } } : {}),
                        },
                      },
                      ArrayValue: { fields: { values: repeated('AnyValue', 1) } },
                      KeyValueList: { fields: { values: repeated('KeyValue', 1) } },
                      KeyValue: {
                        fields: { key: { type: 'string', id: 1 }, value: { type: 'AnyValue', id: 2 }, ...extra },
                      },
                      InstrumentationScope: {
                        fields: {
                          name: { type: 'string', id: 1 },
                          version: { type: 'string', id: 2 },
                          attributes: repeated('KeyValue', 3),
                          droppedAttributesCount: { type: 'uint32', id: 4 },
                          ...extra,
                        },
                      },
                    },
                  },
                },
              },
              resource: {
                nested: {
                  v1: {
                    nested: {
                      Resource: {
                        fields: {
                          attributes: repeated(`${COMMON}.KeyValue`, 1),
                          droppedAttributesCount: { type: 'uint32', id: 2 },
                          ...extra,
                        },
                      },
                    },
                  },
                },
              },
              trace: {
                nested: {
                  v1: {
                    nested: {
                      TracesData: { fields: { resourceSpans: repeated('ResourceSpans', 1) } },
                      ResourceSpans: {
                        fields: {
                          resource: { type: 'opentelemetry.proto.resource.v1.Resource', id: 1 },
                          scopeSpans: repeated('ScopeSpans', 2),
                          schemaUrl: { type: 'string', id: 3 },
                          ...extra,
                        },
                      },
                      ScopeSpans: {
                        fields: {
                          scope: { type: `${COMMON}.InstrumentationScope`, id: 1 },
                          spans: repeated('Span', 2),
                          schemaUrl: { type: 'string', id: 3 },
                          ...extra,
                        },
                      },
                      Span: {
                        fields: {
                          traceId: { type: 'bytes', id: 1 },
                          spanId: { type: 'bytes', id: 2 },
                          traceState: { type: 'string', id: 3 },
                          parentSpanId: { type: 'bytes', id: 4 },
                          flags: { type: 'fixed32', id: 16 },
                          name: { type: 'string', id: 5 },
                          kind: { type: 'int32', id: 6 },
                          startTimeUnixNano: { type: 'fixed64', id: 7 },
                          endTimeUnixNano: { type: 'fixed64', id: 8 },
                          attributes: repeated(`${COMMON}.KeyValue`, 9),
                          droppedAttributesCount: { type: 'uint32', id: 10 },
                          events: repeated('Event', 11),
                          droppedEventsCount: { type: 'uint32', id: 12 },
                          links: repeated('Link', 13),
                          droppedLinksCount: { type: 'uint32', id: 14 },
                          status: { type: 'Status', id: 15 },
                          ...extra,
                        },
                        nested: {
                          Event: {
                            fields: {
                              timeUnixNano: { type: 'fixed64', id: 1 },
                              name: { type: 'string', id: 2 },
                              attributes: repeated(`${COMMON}.KeyValue`, 3),
                              droppedAttributesCount: { type: 'uint32', id: 4 },
                              ...extra,
                            },
                          },
                          Link: {
                            fields: {
                              traceId: { type: 'bytes', id: 1 },
                              spanId: { type: 'bytes', id: 2 },
                              traceState: { type: 'string', id: 3 },
                              attributes: repeated(`${COMMON}.KeyValue`, 4),
                              droppedAttributesCount: { type: 'uint32', id: 5 },
                              flags: { type: 'fixed32', id: 6 },
                              ...extra,
                            },
                          },
                        },
                      },
                      Status: {
                        fields: { message: { type: 'string', id: 2 }, code: { type: 'int32', id: 3 }, ...extra },
                      },
                    },
                  },
                },
              },
              collector: {
                nested: {
                  trace: {
                    nested: {
                      v1: {
                        nested: {
                          ExportTraceServiceRequest: {
                            fields: { resourceSpans: repeated(`${TRACE}.ResourceSpans`, 1), ...extra },
                          },
                        },
                      },
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
  };
}

export function createOtlpRoot(options: { withUnknownFields?: boolean } = {}): protobuf.Root {
  return protobuf.Root.fromJSON(schema(options.withUnknownFields ?? false));
}

/** OTLP TracesData (also Tempo's `Trace` message: the same single field 1). */
export function tracesDataType(root: protobuf.Root): protobuf.Type {
  return root.lookupType('opentelemetry.proto.trace.v1.TracesData');
}

export function exportRequestType(root: protobuf.Root): protobuf.Type {
  return root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest');
}

/**
 * Encodes a plain ExportTraceServiceRequest object through protobufjs `fromObject` (field names as
 * in the schema; 64-bit values as decimal strings; bytes as Buffers).
 */
export function encodeWithProtobufjs(
  request: Record<string, unknown>,
  options: { withUnknownFields?: boolean } = {},
): Buffer {
  const type = exportRequestType(createOtlpRoot(options));
  return Buffer.from(type.encode(type.fromObject(request)).finish());
}
