import IPVSAdm
import LVSModel
import Synchronization

/// An in-memory IPVS table that answers control requests the way the kernel does (errno-wise).
/// Shared between a test and the actor or thread it drives: `state`'s mutex guards every field,
/// and a request runs whole under it.
public final class FakeIPVS: ControlBackend, Sendable {
    /// What the fake holds; each public property below reads or writes one field under the lock.
    struct State {
        var table = TableSnapshot()
        var connections: [ConnectionSnapshot] = []
        var failNext: IPVSError?
        var unreachable = false
        var requests: [ControlRequest] = []
        var sysctls = SysctlValues()
    }

    private let state = Mutex(State())

    /// One field of the state, read or written under the lock.
    private subscript<Value: Sendable>(field field: WritableKeyPath<State, Value>) -> Value {
        get { state.withLock { $0[keyPath: field] } }
        set { state.withLock { $0[keyPath: field] = newValue } }
    }

    public var table: TableSnapshot { get { self[field: \.table] } set { self[field: \.table] = newValue } }
    public var connections: [ConnectionSnapshot] { get { self[field: \.connections] } set { self[field: \.connections] = newValue } }
    /// The next request fails with this error.
    public var failNext: IPVSError? { get { self[field: \.failNext] } set { self[field: \.failNext] = newValue } }
    /// Every request fails as if lvsd were not running.
    public var unreachable: Bool { get { self[field: \.unreachable] } set { self[field: \.unreachable] = newValue } }
    public var requests: [ControlRequest] { get { self[field: \.requests] } set { self[field: \.requests] = newValue } }

    public init() {}
    public static let schedulers: Set<String> = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"]

    public func index(_ key: ServiceKey) -> Int? {
        state.withLock { $0.index(key) }
    }

    public func execute(_ request: ControlRequest) throws -> ControlResponse {
        try state.withLock { try $0.execute(request) }
    }
}

extension FakeIPVS.State {
    func index(_ key: ServiceKey) -> Int? {
        table.services.firstIndex { IPVSAdmExecutor.sameService($0.key, key) }
    }

    mutating func execute(_ request: ControlRequest) throws -> ControlResponse {
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
            if !FakeIPVS.schedulers.contains(opts.scheduler) { return .failed(.schedulerNotFound) }
            if let pe = opts.persistenceEngine, pe != "sip" { return .failed(.schedulerNotFound) }
            table.services.append(ServiceSnapshot(key: key, options: opts))
        case .editService(let key, let opts):
            guard let i = index(key) else { return .failed(.noSuchService) }
            if !FakeIPVS.schedulers.contains(opts.scheduler) { return .failed(.schedulerNotFound) }
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
        case .status, .reload, .restart:
            return .text("ok")
        case .batch:
            return .failed(.invalid) // batches come one request at a time (the default `execute(batch:)`)
        case .sysctl(let assignments):
            for a in assignments { sysctls[a.setting] = a.value }
            return .sysctls(sysctls)
        }
        return .ok
    }
}
