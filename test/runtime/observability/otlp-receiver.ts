import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A span as a test reads it, whichever protocol carried it. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  /** Epoch ns. */
  start: bigint;
  end: bigint;
  attributes: Record<string, string | number | boolean>;
  events: { name: string; time: bigint }[];
  status?: { code: number; message?: string };
  resource: Record<string, string | number | boolean>;
  scope: { name: string; version: string };
}

export interface Receiver {
  url: string;
  spans: ReceivedSpan[];
  requests: { path: string; headers: IncomingHttpHeaders }[];
  close(): Promise<void>;
}

/** A local OTLP/HTTP traces receiver (node:http) that decodes http/json and http/protobuf. */
export async function startReceiver(): Promise<Receiver> {
  const spans: ReceivedSpan[] = [];
  const requests: Receiver['requests'] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ path: req.url ?? '', headers: req.headers });
      const json = req.headers['content-type'] === 'application/json';
      spans.push(...(json ? fromJson(JSON.parse(body.toString('utf8'))) : fromProtobuf(body)));
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/json' });
      res.end(json ? '{}' : undefined);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    requests,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

type Json = Record<string, any>;

function jsonValue(v: Json): string | number | boolean {
  if ('stringValue' in v) return v.stringValue;
  if ('boolValue' in v) return v.boolValue;
  if ('intValue' in v) return Number(v.intValue);
  return v.doubleValue;
}

function jsonAttrs(list: Json[] | undefined): Record<string, string | number | boolean> {
  return Object.fromEntries((list ?? []).map((kv) => [kv.key, jsonValue(kv.value)]));
}

function fromJson(req: Json): ReceivedSpan[] {
  return req.resourceSpans.flatMap((rs: Json) =>
    rs.scopeSpans.flatMap((ss: Json) =>
      ss.spans.map(
        (s: Json): ReceivedSpan => ({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId || undefined,
          name: s.name,
          kind: s.kind,
          start: BigInt(s.startTimeUnixNano),
          end: BigInt(s.endTimeUnixNano),
          attributes: jsonAttrs(s.attributes),
          events: (s.events ?? []).map((e: Json) => ({ name: e.name, time: BigInt(e.timeUnixNano) })),
          status: s.status,
          resource: jsonAttrs(rs.resource.attributes),
          scope: ss.scope,
        }),
      ),
    ),
  );
}

/** Protobuf wire fields of one message: [field number, value] (varint as bigint, the rest as bytes). */
function fields(buf: Buffer): [number, bigint | Buffer][] {
  const out: [number, bigint | Buffer][] = [];
  let i = 0;
  const varint = () => {
    let n = 0n;
    let shift = 0n;
    for (;;) {
      const b = buf[i++]!;
      n |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return n;
      shift += 7n;
    }
  };
  const take = (n: number) => {
    const b = buf.subarray(i, i + n);
    i += n;
    return b;
  };
  while (i < buf.length) {
    const tag = Number(varint());
    const wire = tag & 7;
    if (wire === 0) out.push([tag >> 3, varint()]);
    else if (wire === 1) out.push([tag >> 3, take(8)]);
    else if (wire === 2) out.push([tag >> 3, take(Number(varint()))]);
    else if (wire === 5) out.push([tag >> 3, take(4)]);
    else throw new Error(`wire type ${wire}`);
  }
  return out;
}

const all = (buf: Buffer, n: number) =>
  fields(buf)
    .filter(([f]) => f === n)
    .map(([, v]) => v as Buffer);
const one = (buf: Buffer, n: number) => all(buf, n)[0];
const num = (buf: Buffer, n: number) => fields(buf).find(([f]) => f === n)?.[1] as bigint | undefined;

function protoAttrs(list: Buffer[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list) {
    const key = one(kv, 1)!.toString('utf8');
    const [[f, v]] = fields(one(kv, 2)!) as [[number, bigint | Buffer]];
    out[key] =
      f === 1
        ? (v as Buffer).toString('utf8')
        : f === 2
          ? v === 1n
          : f === 3
            ? Number(BigInt.asIntN(64, v as bigint))
            : (v as Buffer).readDoubleLE(0);
  }
  return out;
}

function fromProtobuf(body: Buffer): ReceivedSpan[] {
  return all(body, 1).flatMap((rs) => {
    const resource = protoAttrs(all(one(rs, 1)!, 1));
    return all(rs, 2).flatMap((ss) => {
      const sc = one(ss, 1)!;
      const scope = { name: one(sc, 1)!.toString('utf8'), version: one(sc, 2)!.toString('utf8') };
      return all(ss, 2).map((s): ReceivedSpan => {
        const status = one(s, 15);
        const parent = one(s, 4);
        return {
          traceId: one(s, 1)!.toString('hex'),
          spanId: one(s, 2)!.toString('hex'),
          ...(parent ? { parentSpanId: parent.toString('hex') } : {}),
          name: one(s, 5)!.toString('utf8'),
          kind: Number(num(s, 6)),
          start: one(s, 7)!.readBigUInt64LE(0),
          end: one(s, 8)!.readBigUInt64LE(0),
          attributes: protoAttrs(all(s, 9)),
          events: all(s, 11).map((e) => ({
            name: one(e, 2)!.toString('utf8'),
            time: one(e, 1)!.readBigUInt64LE(0),
          })),
          ...(status
            ? { status: { code: Number(num(status, 3)), message: one(status, 2)?.toString('utf8') } }
            : {}),
          resource,
          scope,
        };
      });
    });
  });
}
