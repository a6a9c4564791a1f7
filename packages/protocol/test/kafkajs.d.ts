// Minimal typings for the parts of kafkajs' internal codec the fixture tests drive. kafkajs is a
// devDependency used only as an independent encoder/decoder of RecordBatch v2.
declare module 'kafkajs/src/protocol/encoder' {
  class Encoder {
    buffer: Buffer;
  }
  export = Encoder;
}
declare module 'kafkajs/src/protocol/decoder' {
  class Decoder {
    constructor(buffer: Buffer);
  }
  export = Decoder;
}
declare module 'kafkajs/src/protocol/recordBatch/v0' {
  import Encoder = require('kafkajs/src/protocol/encoder');
  export function RecordBatch(args: {
    compression?: number;
    firstOffset?: unknown;
    firstTimestamp?: number;
    maxTimestamp?: number;
    partitionLeaderEpoch?: number;
    lastOffsetDelta?: number;
    transactional?: boolean;
    producerId?: unknown;
    producerEpoch?: number;
    firstSequence?: number;
    records: Encoder[];
  }): Promise<Encoder>;
}
declare module 'kafkajs/src/protocol/recordBatch/record/v0' {
  import Encoder = require('kafkajs/src/protocol/encoder');
  function Record(args: {
    offsetDelta?: number;
    timestampDelta?: number;
    key: Buffer | null;
    value: Buffer | null;
    headers?: Record<string, Buffer | string>;
  }): Encoder;
  export = Record;
}
declare module 'kafkajs/src/protocol/recordBatch/v0/decoder' {
  import Decoder = require('kafkajs/src/protocol/decoder');
  interface KafkaJsRecord {
    key: Buffer | null;
    value: Buffer | null;
    headers: Record<string, Buffer>;
    offset: string;
    timestamp: string;
  }
  function decode(decoder: Decoder): Promise<{
    firstOffset: string;
    firstTimestamp: string;
    partitionLeaderEpoch: number;
    inTransaction: boolean;
    isControlBatch: boolean;
    lastOffsetDelta: number;
    producerId: string;
    producerEpoch: number;
    firstSequence: number;
    maxTimestamp: string;
    records: KafkaJsRecord[];
  }>;
  export = decode;
}
declare module 'kafkajs/src/utils/long' {
  class Long {
    static fromValue(v: number | string): Long;
    static fromNumber(v: number): Long;
  }
  export = Long;
}
