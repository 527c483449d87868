import IPVSAdm
import LVSModel

/// An in-memory IPVS table that answers control requests the way the kernel does (errno-wise).
public final class FakeIPVS: ControlBackend {
    public var table = TableSnapshot()
    public var connections: [ConnectionSnapshot] = []
    /// The next request fails with this error.
    public var failNext: IPVSError?
    /// Every request fails as if lvsd were not running.
    public var unreachable = false
    public var requests: [ControlRequest] = []

    public init() {}
    public static let schedulers: Set<String> = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"]

    public func index(_ key: ServiceKey) -> Int? {
        table.services.firstIndex { IPVSAdmExecutor.sameService($0.key, key) }
    }

    public func execute(_ request: ControlRequest) throws -> ControlResponse {
        if unreachable {
            throw ControlTransportError(message: "cannot reach lvsd at /tmp/none.sock: No such file or directory (is lvsd running?)")
        }
        requests.append(request)
        if let e = failNext {
            failNext = nil
            return .failed(e)
        }
        switch request {
        case .addService(let key, let opts):
            if index(key) != nil { return .failed(.serviceExists) }
            if !Self.schedulers.contains(opts.scheduler) { return .failed(.schedulerNotFound) }
            if let pe = opts.persistenceEngine, pe != "sip" { return .failed(.schedulerNotFound) }
            table.services.append(ServiceSnapshot(key: key, options: opts))
        case .editService(let key, let opts):
            guard let i = index(key) else { return .failed(.noSuchService) }
            if !Self.schedulers.contains(opts.scheduler) { return .failed(.schedulerNotFound) }
            table.services[i].options = opts
        case .deleteService(let key):
            guard let i = index(key) else { return .failed(.noSuchService) }
            table.services.remove(at: i)
        case .clear:
            table.services = []
        case .addDestination(let key, let d):
            guard let i = index(key) else { return .failed(.noSuchService) }
            if table.services[i].destinations.contains(where: { $0.options.address == d.address && $0.options.port == d.port }) {
                return .failed(.destinationExists)
            }
            if d.lowerThreshold > d.upperThreshold { return .failed(.outOfRange) }
            table.services[i].destinations.insert(DestinationSnapshot(options: d), at: 0)
        case .editDestination(let key, let d):
            guard let i = index(key) else { return .failed(.noSuchService) }
            guard let j = table.services[i].destinations.firstIndex(where: { $0.options.address == d.address && $0.options.port == d.port }) else {
                return .failed(.noSuchDestination)
            }
            table.services[i].destinations[j].options = d
        case .deleteDestination(let key, let address, let port):
            guard let i = index(key) else { return .failed(.noSuchService) }
            guard let j = table.services[i].destinations.firstIndex(where: { $0.options.address == address && $0.options.port == port }) else {
                return .failed(.noSuchDestination)
            }
            table.services[i].destinations.remove(at: j)
        case .zero(let key):
            if let key {
                guard let i = index(key) else { return .failed(.noSuchService) }
                table.services[i].stats = .init()
            } else {
                for i in table.services.indices { table.services[i].stats = .init() }
            }
        case .setTimeouts(let t):
            if t.tcp != 0 { table.timeouts.tcp = t.tcp }
            if t.tcpFin != 0 { table.timeouts.tcpFin = t.tcpFin }
            if t.udp != 0 { table.timeouts.udp = t.udp }
        case .startDaemon(let d):
            if table.daemons.contains(where: { $0.role == d.role }) { return .failed(.daemonRunning) }
            table.daemons.append(d)
        case .stopDaemon(let role):
            guard let i = table.daemons.firstIndex(where: { $0.role == role }) else { return .failed(.noDaemon) }
            table.daemons.remove(at: i)
        case .snapshot:
            return .snapshot(table)
        case .connections:
            return .connections(connections)
        case .status, .reload:
            return .text("ok")
        case .batch:
            return .failed(.invalid) // batches come one request at a time (the default `execute(batch:)`)
        }
        return .ok
    }
}
