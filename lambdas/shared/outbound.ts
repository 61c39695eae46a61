import { BlockList, isIP, type LookupFunction, type Socket } from 'node:net';
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';

/**
 * The one way the gateway fetches URLs that somebody else handed it (the upstream's video
 * URL, a client's webhook `callback_url`). Every address it connects to must be public —
 * loopback too in local mode — so the gateway cannot be aimed at the VPC, the instance
 * metadata service or anything else behind it (server-side request forgery).
 *
 * IP literals are classified before connecting; host names are classified inside the
 * socket's `lookup`, i.e. the address checked is the address connected to, which defeats
 * DNS rebinding (a name that resolves to a public address at validation time and to a
 * private one at connect time).
 */

export type AddressClass = 'public' | 'loopback' | 'private' | 'link-local' | 'unique-local' | 'reserved';

export interface OutboundPolicy {
  /** Local mode: the simulated upstream, the local API and webhooks all live on 127.0.0.1. */
  allowLoopback: boolean;
  requireHttps: boolean;
  /** The operator's own endpoints (the upstream API from configuration): any address. */
  anyAddress?: boolean;
}

export const cloudPolicy: OutboundPolicy = Object.freeze({ allowLoopback: false, requireHttps: true });
export const localPolicy: OutboundPolicy = Object.freeze({ allowLoopback: true, requireHttps: false });

/** For URLs the operator configured, not ones a client or an upstream answer supplied. */
export const operatorPolicy: OutboundPolicy = Object.freeze({ allowLoopback: true, requireHttps: false, anyAddress: true });

export function policyFor(localMode: boolean): OutboundPolicy {
  return localMode ? localPolicy : cloudPolicy;
}

/**
 * URLs a client hands the gateway (reference media, its webhook): http or https, public hosts
 * only outside local mode. The webhook sender and request validation both apply it.
 */
export function clientUrlPolicy(localMode: boolean): OutboundPolicy {
  return { allowLoopback: localMode, requireHttps: false };
}

export type OutboundErrorCode =
  | 'blocked_address'
  | 'bad_url'
  | 'timeout'
  | 'too_many_redirects'
  | 'network'
  | 'aborted';

/** Messages name the host, never the full URL (it may carry a signature) nor a response body. */
export class OutboundError extends Error {
  override readonly name = 'OutboundError';
  readonly code: OutboundErrorCode;
  readonly host: string | undefined;

  constructor(code: OutboundErrorCode, message: string, options: { host?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.host = options.host;
  }
}

// ---------------------------------------------------------------------------------------
// Address classification

const ipv4Ranges: ReadonlyArray<readonly [AddressClass, string, number]> = [
  ['reserved', '0.0.0.0', 8], // "this network"; 0.0.0.0 reaches the local host on Linux
  ['private', '10.0.0.0', 8],
  ['private', '100.64.0.0', 10], // carrier-grade NAT, shared address space
  ['loopback', '127.0.0.0', 8],
  ['link-local', '169.254.0.0', 16], // includes the instance metadata service 169.254.169.254
  ['private', '172.16.0.0', 12],
  ['reserved', '192.0.0.0', 24], // IETF protocol assignments
  ['reserved', '192.0.2.0', 24], // TEST-NET-1
  ['reserved', '192.88.99.0', 24], // deprecated 6to4 relay anycast
  ['private', '192.168.0.0', 16],
  ['reserved', '198.18.0.0', 15], // benchmarking
  ['reserved', '198.51.100.0', 24], // TEST-NET-2
  ['reserved', '203.0.113.0', 24], // TEST-NET-3
  ['reserved', '224.0.0.0', 4], // multicast
  ['reserved', '240.0.0.0', 4], // future use, includes broadcast 255.255.255.255
];

// Prefixes that embed an IPv4 address (mapped, compatible, NAT64, 6to4) are handled
// before these, by classifying the embedded address.
const ipv6Ranges: ReadonlyArray<readonly [AddressClass, string, number]> = [
  ['unique-local', 'fc00::', 7],
  ['link-local', 'fe80::', 10],
  ['reserved', 'fec0::', 10], // deprecated site-local
  ['reserved', 'ff00::', 8], // multicast
  ['reserved', '100::', 64], // discard-only
  ['reserved', '64:ff9b:1::', 48], // local-use NAT64
  ['reserved', '2001::', 23], // IETF protocol assignments, incl. Teredo 2001::/32
  ['reserved', '2001:db8::', 32], // documentation
  ['reserved', '3fff::', 20], // documentation
];

function blockListsFor(
  ranges: ReadonlyArray<readonly [AddressClass, string, number]>,
  type: 'ipv4' | 'ipv6',
): Array<[AddressClass, BlockList]> {
  const lists = new Map<AddressClass, BlockList>();
  for (const [cls, network, prefix] of ranges) {
    let list = lists.get(cls);
    if (list === undefined) {
      list = new BlockList();
      lists.set(cls, list);
    }
    list.addSubnet(network, prefix, type);
  }
  return [...lists];
}

// Built on first use, like the resolver below: a Lambda that never checks an address or
// connects out (the callback handler) does not pay for them at cold start.
let blockLists: { ipv4: Array<[AddressClass, BlockList]>; ipv6: Array<[AddressClass, BlockList]> } | undefined;
const lists = () => (blockLists ??= { ipv4: blockListsFor(ipv4Ranges, 'ipv4'), ipv6: blockListsFor(ipv6Ranges, 'ipv6') });
/** Everything outside 2000::/3 (global unicast) is unassigned or special-purpose. */
const globalUnicast = new BlockList();
globalUnicast.addSubnet('2000::', 3, 'ipv6');

function classifyIpv4(ip: string): AddressClass {
  for (const [cls, list] of lists().ipv4) if (list.check(ip, 'ipv4')) return cls;
  return 'public';
}

/** The eight 16-bit groups of a valid IPv6 address (zone id dropped). */
function ipv6Groups(ip: string): number[] {
  let text = ip.split('%')[0] ?? '';
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const zeros = rest === undefined ? [] : new Array<string>(8 - headGroups.length - restGroups.length).fill('0');
  return [...headGroups, ...zeros, ...restGroups].map((group) => parseInt(group, 16));
}

function ipv4From(high: number, low: number): string {
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

function classifyIpv6(ip: string): AddressClass {
  const g = ipv6Groups(ip);
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = g;
  const firstFiveZero = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0;
  if (firstFiveZero && g5 === 0 && g6 === 0) {
    if (g7 === 0) return 'reserved'; // ::
    if (g7 === 1) return 'loopback'; // ::1
  }
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (deprecated compatible)
  if (firstFiveZero && (g5 === 0xffff || g5 === 0)) return classifyIpv4(ipv4From(g6, g7));
  // ::ffff:0:a.b.c.d (SIIT translated)
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0xffff && g5 === 0) {
    return classifyIpv4(ipv4From(g6, g7));
  }
  // 64:ff9b::a.b.c.d, the well-known NAT64 prefix: the gateway would reach the IPv4 address
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) {
    return classifyIpv4(ipv4From(g6, g7));
  }
  // 2002:aabb:ccdd::/48, 6to4 for the IPv4 address aa.bb.cc.dd
  if (g0 === 0x2002) return classifyIpv4(ipv4From(g1, g2));

  const normalised = g.map((group) => group.toString(16)).join(':');
  for (const [cls, list] of lists().ipv6) if (list.check(normalised, 'ipv6')) return cls;
  return globalUnicast.check(normalised, 'ipv6') ? 'public' : 'reserved';
}

/**
 * What kind of address `ip` is. Anything that is not a canonical IPv4 or IPv6 literal
 * (including octal or hex spellings, which URL parsing normalises first) is 'reserved',
 * so that unexpected input fails closed.
 */
export function classifyAddress(ip: string): AddressClass {
  const unbracketed = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  switch (isIP(unbracketed)) {
    case 4:
      return classifyIpv4(unbracketed);
    case 6:
      return classifyIpv6(unbracketed);
    default:
      return 'reserved';
  }
}

export function isAllowedAddress(ip: string, policy: OutboundPolicy): boolean {
  if (policy.anyAddress === true) return true;
  const cls = classifyAddress(ip);
  return cls === 'public' || (cls === 'loopback' && policy.allowLoopback);
}

// ---------------------------------------------------------------------------------------
// URL checks

export type UrlCheck =
  | { ok: true; url: URL }
  | { ok: false; reason: string; code: 'bad_url' | 'blocked_address' };

/** The host as a resolver or `isIP` wants it: no IPv6 brackets, no trailing root dot. */
function bareHost(url: URL): string {
  const host = url.hostname;
  if (host.startsWith('[') && host.endsWith(']')) return host.slice(1, -1);
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

/**
 * Synchronous checks of a URL the gateway may fetch: http(s) only (https only when the
 * policy says so), no credentials, and IP-literal hosts must be allowed addresses. Host
 * names pass here; their addresses are checked when connecting (`openGet`, `postJson`).
 * WHATWG parsing turns `http://2130706433/`, `http://0177.0.0.1/` and `http://0x7f.1/` into
 * 127.0.0.1 before the check.
 */
export function checkUrl(input: string | URL, policy: OutboundPolicy): UrlCheck {
  let url: URL;
  try {
    url = new URL(typeof input === 'string' ? input : input.href);
  } catch {
    return { ok: false, code: 'bad_url', reason: 'not a valid absolute URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { ok: false, code: 'bad_url', reason: `scheme ${url.protocol} is not allowed, only http(s)` };
  }
  if (url.username !== '' || url.password !== '') {
    return { ok: false, code: 'bad_url', reason: `URL for ${url.hostname} carries credentials` };
  }
  const host = bareHost(url);
  if (host === '') return { ok: false, code: 'bad_url', reason: 'URL has no host' };
  if (isIP(host) !== 0) {
    if (!isAllowedAddress(host, policy)) {
      return { ok: false, code: 'blocked_address', reason: `${host} is not a public address (${classifyAddress(host)})` };
    }
  } else if (!policy.allowLoopback && (host === 'localhost' || host.endsWith('.localhost'))) {
    return { ok: false, code: 'blocked_address', reason: `${host} is a loopback name` };
  }
  if (policy.requireHttps && url.protocol !== 'https:') {
    return { ok: false, code: 'bad_url', reason: `${url.host} must be reached over https` };
  }
  return { ok: true, url };
}

// ---------------------------------------------------------------------------------------
// Guarded connections

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Host name to addresses; replaceable in tests to simulate names resolving anywhere. */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) => (await import('node:dns/promises')).lookup(hostname, { all: true });

/**
 * Where a URL's host name resolves now to an address the policy refuses: the reason, else
 * undefined. For URLs the gateway hands on (to an upstream) or keeps for later (a webhook),
 * so that a name pointing inside is refused when it is given, not only when it is fetched.
 * A name that does not resolve within `timeoutMs`, or not at all, passes: DNS trouble is no
 * verdict, and every fetch of the gateway's own is still checked where it connects.
 */
export async function refusedResolution(
  input: string | URL,
  policy: OutboundPolicy,
  options: { resolve?: Resolver; timeoutMs: number },
): Promise<string | undefined> {
  const url = typeof input === 'string' ? URL.parse(input) : input;
  if (url === null || policy.anyAddress === true) return undefined;
  const host = bareHost(url);
  if (host === '' || isIP(host) !== 0) return undefined; // literals are checkUrl's
  const resolve = options.resolve ?? systemResolver;
  let timer: NodeJS.Timeout | undefined;
  const addresses = await Promise.race([
    resolve(host).catch(() => [] as ResolvedAddress[]),
    new Promise<ResolvedAddress[]>((done) => {
      timer = setTimeout(() => done([]), options.timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
  const refused = addresses.find((a) => !isAllowedAddress(a.address, policy));
  return refused && `${host} resolves to ${refused.address}, which is not a public address (${classifyAddress(refused.address)})`;
}

/**
 * A `lookup` for `net.connect` that refuses the connection unless every address the name
 * resolves to is allowed; Node then connects to exactly the addresses checked here.
 */
export function guardedLookup(policy: OutboundPolicy, resolve: Resolver = systemResolver): LookupFunction {
  return (hostname, options, callback) => {
    const wantedFamily = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
    const settle = (addresses: ResolvedAddress[]): ResolvedAddress[] | OutboundError => {
      const candidates = wantedFamily === 4 || wantedFamily === 6
        ? addresses.filter((a) => a.family === wantedFamily)
        : addresses;
      if (candidates.length === 0) {
        return new OutboundError('network', `${hostname} did not resolve to any address`, { host: hostname });
      }
      const refused = candidates.find((a) => !isAllowedAddress(a.address, policy));
      if (refused !== undefined) {
        return new OutboundError(
          'blocked_address',
          `${hostname} resolves to ${refused.address}, which is not a public address (${classifyAddress(refused.address)})`,
          { host: hostname },
        );
      }
      return candidates;
    };
    // The callback runs outside the promise chain so that a throw inside it is not
    // mistaken for a resolver failure (and the callback is never called twice).
    Promise.resolve(hostname).then(resolve).then(
      (addresses) => {
        const verdict = settle(addresses);
        process.nextTick(() => {
          if (verdict instanceof OutboundError) callback(verdict, '', 0);
          else if (options.all === true) callback(null, verdict);
          else callback(null, verdict[0]?.address ?? '', verdict[0]?.family ?? 4);
        });
      },
      (error: unknown) => {
        process.nextTick(() => callback(error as NodeJS.ErrnoException, '', 0));
      },
    );
  };
}

// One keep-alive agent per protocol and policy: a pooled socket is only reused for a
// request under the same policy as the one its address was checked against.
const agents = new Map<string, http.Agent>();

/**
 * How long a pooled connection may sit idle before it is closed (sooner when the server's
 * `Keep-Alive: timeout=` says so). Below the 5 s that Node and many servers keep an idle
 * connection, so that a POST never goes out on a connection the server is closing at that
 * moment: a reset POST is ambiguous (it may have arrived), and an ambiguous submit holds a
 * task at that upstream instead of failing over.
 */
const IDLE_SOCKET_MS = 4_000;

function sharedAgent(protocol: 'http:' | 'https:', policy: OutboundPolicy): http.Agent {
  const key = `${protocol}${policy.allowLoopback ? 'L' : ''}${policy.requireHttps ? 'S' : ''}${policy.anyAddress ? 'A' : ''}`;
  let agent = agents.get(key);
  if (agent === undefined) {
    const options = { keepAlive: true, scheduling: 'lifo' as const, timeout: IDLE_SOCKET_MS };
    agent = protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
    agents.set(key, agent);
  }
  return agent;
}

/** Closes pooled idle connections (local runtime shutdown, tests). */
export function closeIdleConnections(): void {
  for (const agent of agents.values()) agent.destroy();
  agents.clear();
}

export interface OutboundOptions {
  policy: OutboundPolicy;
  /** Limit for connecting and receiving the response head, and for each silence while the
   * body streams (time the reader spends applying backpressure does not count). Default 10 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
  headers?: Record<string, string>;
  /** Replaces DNS; the answers go through the same checks. Requests using it are not pooled. */
  resolve?: Resolver;
}

export interface GetOptions extends OutboundOptions {
  /** Redirects followed, each hop re-checked; one more is a `too_many_redirects` error. Default 5. */
  maxRedirects?: number;
}

export interface TextOptions extends OutboundOptions {
  /** The response body is read up to this many bytes, the rest discarded. Default 64 KiB. */
  maxResponseBytes?: number;
}

export interface OutboundResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** Errors ('network' when cut short, 'timeout' when stalled, 'aborted') are emitted on this
   * stream. Destroy it when not reading it to the end. */
  body: Readable;
  /** The URL finally answered, after redirects. */
  url: string;
}

export interface TextResult {
  status: number;
  headers: IncomingHttpHeaders;
  bodyText: string;
}

const defaultTimeoutMs = 10_000;
const redirectStatuses = new Set([301, 302, 303, 307, 308]);
const credentialHeaders = new Set(['authorization', 'cookie', 'proxy-authorization']);

interface Exchange {
  policy: OutboundPolicy;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  resolve: Resolver | undefined;
}

function exchangeOf(options: OutboundOptions): Exchange {
  return {
    policy: options.policy,
    timeoutMs: options.timeoutMs ?? defaultTimeoutMs,
    signal: options.signal,
    resolve: options.resolve,
  };
}

function abortedError(host: string, reason: unknown): OutboundError {
  return new OutboundError('aborted', `request to ${host} was aborted`, { host, cause: reason });
}

function toOutboundError(error: unknown, host: string): OutboundError {
  if (error instanceof OutboundError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  const wrap = (kind: OutboundErrorCode, text: string) => new OutboundError(kind, text, { host, cause: error });
  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NODATA':
    case 'EAI_NONAME':
      return wrap('network', `could not resolve ${host} (${code})`);
    case 'ECONNREFUSED':
      return wrap('network', `${host} refused the connection`);
    case 'ECONNRESET':
    case 'EPIPE':
      return message === 'aborted'
        ? wrap('network', `${host} closed the connection before the response was complete`)
        : wrap('network', `${host} reset the connection (${code})`);
    case 'ETIMEDOUT':
      return wrap('timeout', `connecting to ${host} timed out`);
    case 'ABORT_ERR':
      return wrap('aborted', `request to ${host} was aborted`);
    default:
      return wrap('network', `request to ${host} failed (${code ?? message})`);
  }
}

function refuseConnectedAddress(socket: Socket, policy: OutboundPolicy, host: string): OutboundError | undefined {
  const address = socket.remoteAddress;
  if (address === undefined || isAllowedAddress(address, policy)) return undefined;
  return new OutboundError('blocked_address', `${host} connected to ${address}, which is not a public address`, { host });
}

interface Sent {
  res: IncomingMessage;
}

/**
 * One request, resolved when the response head arrives. The address is checked in
 * `lookup` (names) or by the caller (IP literals, which Node connects to without lookup),
 * and once more on the connected socket.
 */
function send(
  url: URL,
  method: 'GET' | 'POST' | 'PUT',
  headers: Record<string, string>,
  payload: Buffer | undefined,
  ex: Exchange,
  retryOnStaleSocket: boolean,
): Promise<Sent> {
  const host = url.host;
  return new Promise<Sent>((resolvePromise, reject) => {
    if (ex.signal?.aborted === true) {
      reject(abortedError(host, ex.signal.reason));
      return;
    }
    const protocol = url.protocol === 'https:' ? 'https:' : 'http:';
    const transport = protocol === 'https:' ? https : http;
    const agent = ex.resolve === undefined
      ? sharedAgent(protocol, ex.policy)
      : new transport.Agent({ keepAlive: false });
    const req = transport.request({
      protocol,
      hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
      port: url.port === '' ? undefined : Number(url.port),
      path: `${url.pathname}${url.search}`,
      method,
      headers,
      agent,
      lookup: guardedLookup(ex.policy, ex.resolve),
    });

    let settled = false;
    const onAbort = () => req.destroy(abortedError(host, ex.signal?.reason));
    const timer = setTimeout(() => {
      req.destroy(new OutboundError('timeout', `${host} did not respond within ${ex.timeoutMs} ms`, { host }));
    }, ex.timeoutMs);
    const finish = () => {
      settled = true;
      clearTimeout(timer);
      ex.signal?.removeEventListener('abort', onAbort);
    };
    ex.signal?.addEventListener('abort', onAbort, { once: true });

    // Stays attached for the request's whole life: errors after the head arrived are
    // reported on the response body instead.
    req.on('error', (error) => {
      if (settled) return;
      finish();
      const errno = (error as NodeJS.ErrnoException).code;
      if (retryOnStaleSocket && req.reusedSocket && (errno === 'ECONNRESET' || errno === 'EPIPE')) {
        // A pooled connection the server had already closed; the request never arrived.
        send(url, method, headers, payload, ex, false).then(resolvePromise, reject);
        return;
      }
      reject(toOutboundError(error, host));
    });
    req.on('socket', (socket: Socket) => {
      const verify = () => {
        const refusal = refuseConnectedAddress(socket, ex.policy, host);
        if (refusal !== undefined) req.destroy(refusal);
      };
      if (socket.connecting) socket.once('connect', verify);
      else verify();
    });
    req.on('response', (res) => {
      if (settled) {
        res.destroy();
        return;
      }
      finish();
      resolvePromise({ res });
    });
    req.end(payload);
  });
}

/**
 * The response body as a stream that fails instead of ending quietly: a connection closed
 * before the body was complete (short Content-Length, cut chunked encoding) is a 'network'
 * error, a server silent for `timeoutMs` while the reader waits is a 'timeout' error.
 */
function guardedBody(res: IncomingMessage, host: string, ex: Exchange): Readable {
  let timer: NodeJS.Timeout | undefined;
  let ended = false;

  const disarm = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  const arm = () => {
    if (ended) return;
    if (timer !== undefined) {
      timer.refresh();
      return;
    }
    timer = setTimeout(() => {
      timer = undefined;
      body.destroy(
        new OutboundError('timeout', `${host} sent no response data for ${ex.timeoutMs} ms`, { host }),
      );
    }, ex.timeoutMs);
  };
  const onAbort = () => body.destroy(abortedError(host, ex.signal?.reason));

  const body = new Readable({
    highWaterMark: 64 * 1024,
    read() {
      arm();
      res.resume();
    },
    destroy(error, callback) {
      ended = true;
      disarm();
      ex.signal?.removeEventListener('abort', onAbort);
      if (!res.destroyed) res.destroy();
      callback(error);
    },
  });

  res.on('data', (chunk: Buffer) => {
    if (body.destroyed) return;
    if (body.push(chunk)) {
      arm();
    } else {
      // The reader is behind: its pace is not the server's silence.
      res.pause();
      disarm();
    }
  });
  res.on('end', () => {
    ended = true;
    disarm();
    ex.signal?.removeEventListener('abort', onAbort);
    body.push(null);
  });
  res.on('error', (error) => {
    if (!body.destroyed) body.destroy(toOutboundError(error, host));
  });
  res.on('close', () => {
    if (!ended && !body.destroyed) {
      body.destroy(
        new OutboundError('network', `${host} closed the connection before the response was complete`, { host }),
      );
    }
  });

  if (ex.signal?.aborted === true) onAbort();
  else ex.signal?.addEventListener('abort', onAbort, { once: true });
  arm();
  return body;
}

function checked(url: URL | string, policy: OutboundPolicy, context: string): URL {
  const verdict = checkUrl(url, policy);
  if (verdict.ok) return verdict.url;
  const host = typeof url === 'string' ? safeHost(url) : url.host;
  throw new OutboundError(verdict.code, `${context}: ${verdict.reason}`, host === undefined ? {} : { host });
}

function safeHost(url: string): string | undefined {
  try {
    return new URL(url).host;
  } catch {
    return undefined;
  }
}

/**
 * GET a URL, following up to `maxRedirects` redirects (each target re-checked before any
 * connection to it), and hand back the response with its body as a stream — for bodies far
 * larger than memory, such as videos streamed into S3. Any status is returned; only
 * transport failures and refusals throw `OutboundError`.
 */
export async function openGet(url: string | URL, options: GetOptions): Promise<OutboundResponse> {
  const ex = exchangeOf(options);
  const maxRedirects = options.maxRedirects ?? 5;
  let target = checked(url, ex.policy, 'refused URL');
  let headers: Record<string, string> = { ...options.headers };

  for (let redirects = 0; ; redirects += 1) {
    const { res } = await send(target, 'GET', headers, undefined, ex, true);
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if (!redirectStatuses.has(status) || location === undefined) {
      return { status, headers: res.headers, body: guardedBody(res, target.host, ex), url: target.href };
    }

    // Redirect bodies are not worth reading; destroying them also bounds what a hostile
    // server can make us download.
    res.on('error', () => {});
    res.destroy();
    if (redirects >= maxRedirects) {
      throw new OutboundError('too_many_redirects', `${target.host} redirected more than ${maxRedirects} times`, {
        host: target.host,
      });
    }
    let next: URL;
    try {
      next = new URL(location, target);
    } catch {
      throw new OutboundError('bad_url', `${target.host} redirected to an invalid URL`, { host: target.host });
    }
    next = checked(next, ex.policy, `${target.host} redirected to a refused URL`);
    if (next.origin !== target.origin) {
      headers = Object.fromEntries(
        Object.entries(headers).filter(([name]) => !credentialHeaders.has(name.toLowerCase())),
      );
    }
    target = next;
  }
}

/** A response's text, read up to `limit` bytes; the rest is discarded. */
async function readText(status: number, headers: IncomingHttpHeaders, body: Readable, limit = 64 * 1024): Promise<TextResult> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    const room = limit - size;
    if (chunk.length > room) {
      chunks.push(chunk.subarray(0, room));
      size = limit;
      break; // ends the iteration, which destroys the stream and discards the rest
    }
    chunks.push(chunk);
    size += chunk.length;
  }
  return { status, headers, bodyText: Buffer.concat(chunks).toString('utf8') };
}

/** GET a small answer (an API's JSON), redirects followed as `openGet` does, read as text. */
export async function getText(url: string | URL, options: GetOptions & TextOptions): Promise<TextResult> {
  const response = await openGet(url, options);
  return readText(response.status, response.headers, response.body, options.maxResponseBytes);
}

/**
 * POST a JSON body (a webhook, an API call). Redirects are not followed: their status is the
 * result. The response text is read up to `maxResponseBytes` and the rest discarded.
 */
export async function postJson(
  url: string | URL,
  body: string,
  headers: Record<string, string>,
  options: TextOptions,
): Promise<TextResult> {
  return postBody(url, Buffer.from(body, 'utf8'), { 'content-type': 'application/json', ...headers }, options);
}

/** POST any body (a multipart form) with the content type in `headers`; otherwise as `postJson`. */
export async function postBody(
  url: string | URL,
  payload: Buffer,
  headers: Record<string, string>,
  options: TextOptions,
): Promise<TextResult> {
  return sendBody('POST', url, payload, headers, options);
}

/** A JSON body under another verb than POST (fal's cancel is a PUT); otherwise as `postJson`. */
export async function sendJson(
  method: 'POST' | 'PUT',
  url: string | URL,
  body: string,
  headers: Record<string, string>,
  options: TextOptions,
): Promise<TextResult> {
  return sendBody(method, url, Buffer.from(body, 'utf8'), { 'content-type': 'application/json', ...headers }, options);
}

async function sendBody(
  method: 'POST' | 'PUT',
  url: string | URL,
  payload: Buffer,
  headers: Record<string, string>,
  options: TextOptions,
): Promise<TextResult> {
  const ex = exchangeOf(options);
  const target = checked(url, ex.policy, 'refused URL');
  const requestHeaders = {
    ...options.headers,
    ...headers,
    'content-length': String(payload.length),
  };
  // Not retried on a pooled connection that resets: a server that read the request and then
  // hung up looks the same as one that closed the idle connection first, and a POST sent twice
  // may be a second paid job. The caller decides (an upstream submit: ambiguous).
  const { res } = await send(target, method, requestHeaders, payload, ex, false);
  return readText(res.statusCode ?? 0, res.headers, guardedBody(res, target.host, ex), options.maxResponseBytes);
}
