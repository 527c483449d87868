import CLVSShim
import Foundation
import Glibc
import LVSControl
import LVSCore
import LVSVRRP
import Logging
import CoreMetrics
import Metrics
import Prometheus
import NIOCore
import NIOPosix
import NIOHTTP1
import LVSModel
import LVSVRRP
import LVSSystem
import Synchronization

/// The Prometheus endpoint (`--metrics ADDRESS:PORT`, off by default): per-service and
/// per-destination counters and rates, connection counts, health-check state and the
/// connection-table occupancy, through swift-metrics with the swift-prometheus backend.
///
/// Values are read from the engine when Prometheus scrapes `/metrics`; counters advance by the
/// difference since the last scrape (a `-Z` is not a reset for Prometheus).
///
/// Served on swift-nio with `ServerLimits.metrics`: clients at once, a read timeout for the
/// request, a write timeout for the answer, a request size cap; one request per connection.
///
/// `@unchecked Sendable` (mutable fields): `listener` and `channel` are written only by `start`
/// and `stop`, one after the other; `healthState` is set before `start`; the series are behind
/// `series`' Mutex.
final class MetricsEndpoint: @unchecked Sendable {
    let registry = PrometheusCollectorRegistry()
    let director: Director
    let logger: Logger
    let host: String
    let port: UInt16
    var healthState: (@Sendable () async -> [(service: String, destination: String, up: Bool)])?
    /// The VRRP instances and ignored adverts (set before `start` with a keepalived.conf; nil while
    /// VRRP does not run).
    var vrrpStatus: (@Sendable () -> (instances: [VRRPInstanceStatus], rejections: [VRRPRejection: Int])?)?
    /// The VIPs' announcement states and withdrawals (`--announce-table`).
    var announcements: (@Sendable () -> (states: [VIPAnnouncement], withdrawals: [AnnouncedPrefix: Int]))?
    private var listener: Int32 = -1
    /// The series exported so far; one scrape at a time uses them.
    private let series = Mutex(MetricsSeries())
    private var channel: Channel?
    /// Scrapes run here, off the event loop.
    fileprivate let queue = DispatchQueue(label: "lvsd-metrics")
    let serverCounters = ServerCounters(name: "metrics endpoint", limits: .metrics)

    init(address: String, director: Director, logger: Logger) throws {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]), port != 0 else {
            throw ServerError("invalid --metrics `\(address)': expected ADDRESS:PORT, e.g. 127.0.0.1:9100")
        }
        host = String(address[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        self.port = port
        self.director = director
        self.logger = logger
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    func start() throws {
        guard let ip = IPAddress(host), ip.isIPv4 || true else { throw ServerError("invalid --metrics address `\(host)'") }
        let v6 = !ip.isIPv4
        let address: RawSocketAddress
        if v6 {
            var bytes = in6_addr()
            withUnsafeMutableBytes(of: &bytes) { ip.store(to: $0.baseAddress!) }
            address = .ipv6(address: bytes, port: port)
        } else {
            address = .ipv4(address: ip.ipv4Value, port: port)
        }
        do {
            listener = try SocketSetup.open(family: address.family, type: Int32(SOCK_STREAM.rawValue), name: v6 ? "socket(AF_INET6)" : "socket(AF_INET)")
            try SocketSetup.setOption(listener, SOL_SOCKET, SO_REUSEADDR, Int32(1), name: "SO_REUSEADDR")
            try SocketSetup.bind(listener, to: address)
            try SocketSetup.listen(listener, backlog: 64)
        } catch {
            throw ServerError("cannot listen for metrics on \(host):\(port): \(error)")
        }
        let counters = serverCounters
        do {
            channel = try ServerBootstrap(group: ServerLoop.group)
                .childChannelInitializer { [self] child in
                    ServerLoop.setCloseOnExec(child)
                    let admitted = counters.admit()
                    if admitted { child.closeFuture.whenComplete { _ in counters.release() } }
                    return child.eventLoop.makeCompletedFuture {
                        let ops = child.pipeline.syncOperations
                        try ops.addHandler(MetricsRequestLimiter(counters: counters))
                        try ops.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
                        try ops.addHandler(MetricsHandler(endpoint: self, admitted: admitted))
                    }
                }
                .withBoundSocket(listener).wait()
        } catch {
            throw ServerError("cannot serve metrics on \(host):\(port): \(error)")
        }
        listener = -1 // the channel owns it now
        logger.info("metrics endpoint", metadata: ["url": "http://\(v6 ? "[\(host)]" : host):\(port)/metrics"])
    }

    func stop() {
        try? channel?.close().wait()
        channel = nil
        if listener >= 0 { close(listener); listener = -1 }
    }

    /// The answer to one request: the scrape for `GET /metrics` (or `/`), else 404.
    fileprivate func response(method: HTTPMethod, uri: String) -> ByteBuffer {
        let path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? uri
        let bytes: [UInt8]
        if method == .GET && (path == "/metrics" || path == "/") {
            let body = scrape()
            bytes = Array("HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8) + body
        } else {
            bytes = Array(Self.status("404 Not Found").utf8)
        }
        var out = ByteBufferAllocator().buffer(capacity: bytes.count)
        out.writeBytes(bytes)
        return out
    }

    /// An answer without a body.
    static func status(_ line: String) -> String {
        "HTTP/1.0 \(line)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    }

    /// How many series the registry holds (tests).
    var seriesCount: Int { series.withLock { $0.count } }

    /// Reads the engine and renders the registry.
    func scrape() -> [UInt8] {
        series.withLock { s in
            s.beginScrape()
            collect(into: &s)
            s.endScrape()
            return registry.emitToBuffer()
        }
    }

    /// Every series of this scrape, from the engine, VRRP, the announcer and the health checks.
    private func collect(into s: inout MetricsSeries) {
        let engine = director.engine
        let snap = engine.snapshot()
        for svc in snap.services {
            let service = [("service", Self.name(svc.key))]
            s.traffic("lvs_service", service, svc.stats, svc.rates)
            for d in svc.destinations {
                let l = service + [("destination", "\(d.options.address.bracketed):\(d.options.port)")]
                s.traffic("lvs_destination", l, d.stats, d.rates)
                s.gauge("lvs_destination_active_connections", l, Double(d.activeConns))
                s.gauge("lvs_destination_inactive_connections", l, Double(d.inactConns))
                s.gauge("lvs_destination_persistent_connections", l, Double(d.persistConns))
                s.gauge("lvs_destination_weight", l, Double(d.options.weight))
            }
        }
        s.gauge("lvs_connection_table_entries", [], Double(engine.connectionCount))
        s.gauge("lvs_connection_table_capacity", [], Double(engine.connectionCapacity * max(1, director.workers.count)))
        let c = engine.counters
        s.total("lvs_forwarded_packets_total", [], c.forwarded)
        s.total("lvs_passed_packets_total", [], c.passed)
        for r in DropReason.allCases { s.total("lvs_dropped_packets_total", [("reason", r.description)], c.drops[Int(r.rawValue)]) }
        for r in NeighbourIgnoreReason.allCases {
            s.total("lvs_neighbour_not_learnt_total", [("reason", r.description)], c.neighbourIgnored[Int(r.rawValue)])
        }
        let sync = engine.syncCounters
        s.total("lvs_sync_datagrams_total", [], UInt64(sync.received))
        s.total("lvs_sync_datagrams_dropped_total", [], UInt64(sync.dropped))
        for (result, n) in [("applied", sync.applied), ("skipped", sync.skipped), ("unbound", sync.unbound),
                            ("served-locally", sync.servedLocally), ("template-limit", sync.templateLimit),
                            ("table-full", sync.tableFull)] {
            s.total("lvs_sync_entries_total", [("result", result)], UInt64(n))
        }
        s.total("lvs_sync_entries_clamped_total", [], UInt64(sync.clamped))
        s.gauge("lvs_sync_templates", [], Double(engine.syncedTemplates.count))
        let resync = engine.resyncCounters // the master daemon's, since it started
        for (result, n) in [("started", resync.started), ("queued", resync.queued), ("refused", resync.refused),
                            ("other-syncid", resync.otherSyncID)] {
            s.total("lvs_sync_resync_requests_total", [("result", result)], UInt64(n))
        }
        s.total("lvs_sync_resync_datagrams_total", [], UInt64(resync.datagrams))
        s.total("lvs_sync_resync_entries_total", [], UInt64(resync.entries))
        s.total("lvs_defense_evictions_total", [("strategy", "drop_entry")], c.dropEntryEvictions)
        s.total("lvs_defense_template_evictions_total", [("strategy", "drop_entry")], c.dropEntryTemplateEvictions)
        s.total("lvs_defense_short_timeouts_total", [("strategy", "secure_tcp")], c.secureTCPShortened)
        let defense = engine.defenseStatus
        s.gauge("lvs_defense_engaged_shards", [("strategy", "drop_entry")], Double(defense.dropEntry))
        s.gauge("lvs_defense_engaged_shards", [("strategy", "drop_packet")], Double(defense.dropPacket))
        s.gauge("lvs_defense_engaged_shards", [("strategy", "secure_tcp")], Double(defense.secureTCP))
        if let vrrpStatus, let (instances, rejections) = vrrpStatus() {
            for i in instances {
                let l = [("instance", i.name)]
                for st in VRRPState.allCases { s.gauge("lvs_vrrp_state", l + [("state", st.rawValue)], i.state == st ? 1 : 0) }
                s.gauge("lvs_vrrp_priority", l, Double(i.configuredPriority))
                s.gauge("lvs_vrrp_effective_priority", l, Double(i.effectivePriority))
                s.total("lvs_vrrp_transitions_total", l, UInt64(i.transitions))
                s.total("lvs_vrrp_adverts_sent_total", l, UInt64(i.advertsSent))
                s.total("lvs_vrrp_adverts_received_total", l, UInt64(i.advertsReceived))
            }
            for r in VRRPRejection.allCases { s.total("lvs_vrrp_adverts_ignored_total", [("reason", r.rawValue)], UInt64(rejections[r] ?? 0)) }
        }
        if let announcements { render(announcements(), into: &s) }
        if let healthState {
            if let states = waitForTask(timeout: .now() + 1, healthState) {
                for h in states {
                    s.gauge("lvs_real_server_up", [("service", h.service), ("destination", h.destination)], h.up ? 1 : 0)
                }
            }
        }
    }

    /// `lvs_vip_announced{vip}` (1 announced, 0 withheld), `lvs_vip_withheld{vip,reason}` (1 for
    /// the reason that applies) and `lvs_vip_withdrawals_total{vip}`.
    private func render(_ a: (states: [VIPAnnouncement], withdrawals: [AnnouncedPrefix: Int]), into s: inout MetricsSeries) {
        for state in a.states {
            let l = [("vip", "\(state.prefix)")]
            s.gauge("lvs_vip_announced", l, state.isAnnounced ? 1 : 0)
            for r in AnnouncementWithholding.allCases { s.gauge("lvs_vip_withheld", l + [("reason", r.label)], state.withheld == r ? 1 : 0) }
            s.total("lvs_vip_withdrawals_total", l, UInt64(a.withdrawals[state.prefix] ?? 0))
        }
    }

    static func name(_ k: ServiceKey) -> String {
        k.isFwmark ? "FWM \(k.fwmark)\(k.isIPv6 ? " IPv6" : "")" : "\(k.proto.listName) \(k.address.bracketed):\(k.port)"
    }
}


/// The series lvsd exports, by name and labels. A scrape sets every series that exists now; one it
/// did not set (a real server, service, VIP or VRRP instance removed since) is destroyed at its
/// end, so config churn does not grow the registry and no stale series is exported.
struct MetricsSeries {
    private var lastTotals: [String: UInt64] = [:]
    private var counters: [String: CoreMetrics.Counter] = [:]
    private var gauges: [String: CoreMetrics.Gauge] = [:]
    private var seen: Set<String> = []

    /// How many series exist (counters and gauges).
    var count: Int { counters.count + gauges.count }

    mutating func beginScrape() { seen.removeAll(keepingCapacity: true) }

    /// Destroys the series this scrape did not set.
    mutating func endScrape() {
        for (k, c) in counters where !seen.contains(k) {
            c.destroy()
            counters[k] = nil
            lastTotals[k] = nil
        }
        for (k, g) in gauges where !seen.contains(k) {
            g.destroy()
            gauges[k] = nil
        }
    }

    private func key(_ name: String, _ labels: [(String, String)]) -> String {
        name + labels.map { "|\($0.0)=\($0.1)" }.joined()
    }

    /// Advances a counter to `value` (by the difference since the last scrape).
    mutating func total(_ name: String, _ labels: [(String, String)], _ value: UInt64) {
        let k = key(name, labels)
        seen.insert(k)
        let counter = counters[k] ?? CoreMetrics.Counter(label: name, dimensions: labels)
        counters[k] = counter
        let last = lastTotals[k] ?? 0
        if value > last { counter.increment(by: Int64(value - last)) }
        lastTotals[k] = value
    }

    /// A service's or real server's counters and rates, as `PREFIX_connections_total` … and
    /// `PREFIX_in_bytes_per_second`.
    mutating func traffic(_ prefix: String, _ labels: [(String, String)], _ stats: StatsSnapshot, _ rates: RateSnapshot) {
        total(prefix + "_connections_total", labels, stats.conns)
        total(prefix + "_in_packets_total", labels, stats.inPackets)
        total(prefix + "_in_bytes_total", labels, stats.inBytes)
        gauge(prefix + "_connections_per_second", labels, Double(rates.cps))
        gauge(prefix + "_in_packets_per_second", labels, Double(rates.inPPS))
        gauge(prefix + "_in_bytes_per_second", labels, Double(rates.inBPS))
    }

    mutating func gauge(_ name: String, _ labels: [(String, String)], _ value: Double) {
        let k = key(name, labels)
        seen.insert(k)
        let g = gauges[k] ?? CoreMetrics.Gauge(label: name, dimensions: labels)
        gauges[k] = g
        g.record(value)
    }
}

/// Counts a metrics client's bytes: past `maxRequestBytes` it answers 413 and closes.
final class MetricsRequestLimiter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let counters: ServerCounters
    private var seen = 0
    private var tripped = false

    init(counters: ServerCounters) { self.counters = counters }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !tripped else { return }
        seen += unwrapInboundIn(data).readableBytes
        if seen > counters.limits.maxRequestBytes {
            tripped = true
            counters.oversized.wrappingAdd(1, ordering: .relaxed)
            let channel = context.channel
            var out = context.channel.allocator.buffer(capacity: 96)
            out.writeString(MetricsEndpoint.status("413 Payload Too Large"))
            context.writeAndFlush(wrapOutboundOut(out)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        context.fireChannelRead(data)
    }
}

/// One metrics client: one request within the read timeout, one answer within the write timeout.
final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = ByteBuffer

    private let endpoint: MetricsEndpoint
    private let admitted: Bool
    private let writer: TimedWriter
    private var head: HTTPRequestHead?
    private var answered = false
    private var readDeadline: Scheduled<Void>?

    init(endpoint: MetricsEndpoint, admitted: Bool) {
        self.endpoint = endpoint
        self.admitted = admitted
        writer = TimedWriter(timeout: endpoint.serverCounters.limits.writeTimeout, counters: endpoint.serverCounters)
    }

    func channelActive(context: ChannelHandlerContext) {
        if !admitted {
            reply(context, MetricsEndpoint.status("503 Service Unavailable"))
        } else {
            let channel = context.channel, counters = endpoint.serverCounters
            readDeadline = context.eventLoop.scheduleTask(in: counters.limits.readTimeout) {
                counters.readTimeouts.wrappingAdd(1, ordering: .relaxed)
                channel.close(promise: nil)
            }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        readDeadline?.cancel()
        writer.disarm()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break // counted by the limiter, ignored
        case .end:
            guard !answered, let head else { return }
            answered = true
            readDeadline?.cancel()
            let endpoint = self.endpoint, loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            endpoint.queue.async {
                let answer = endpoint.response(method: head.method, uri: head.uri)
                loop.execute {
                    let (handler, context) = bound.value
                    guard context.channel.isActive else { return }
                    let channel = context.channel
                    handler.writer.write(answer, context: context) { channel.close(promise: nil) }
                }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // Not HTTP (the decoder's errors): 400, then close.
        reply(context, MetricsEndpoint.status("400 Bad Request"))
    }

    private func reply(_ context: ChannelHandlerContext, _ text: String) {
        guard !answered else { context.close(promise: nil); return }
        answered = true
        readDeadline?.cancel()
        var out = context.channel.allocator.buffer(capacity: text.utf8.count)
        out.writeString(text)
        let channel = context.channel
        writer.write(out, context: context) { channel.close(promise: nil) }
    }
}
