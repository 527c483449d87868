/// The control protocol between lvsadm and lvsd: one JSON object per line each way, every one
/// with a `"version"` key, written with sorted keys (so a line is always the same bytes). A peer
/// that speaks another version is told so, never guessed at.
public enum ControlProtocol {
    /// The version this build speaks. Bump it on any change of the wire form; 0 is the unversioned
    /// form of swift-lvs before it (synthesized `_0` keys).
    public static let version = 1
    /// The `.connections` request line (keys sorted, without the newline): lvsd runs such a request
    /// on its listing queue.
    public static let connectionsRequestLine: StaticString = #"{"request":"connections","version":1}"#
    /// The `.connections` answer up to its first entry as lvsd writes it by hand (a million
    /// entries), the version first so that a reader knows it before any entry, then the names of
    /// an entry's fields once (`connectionFields`); each entry is an array of values in that order.
    public static let connectionsAnswerHeader: StaticString =
        #"{"version":1,"answer":"connections","fields":["protocol","client","cport","virtual","vport","destination","dport","state","expires","template"],"connections":["#
    /// The names of a listed connection's fields, in the order of an entry's values (the
    /// `"fields"` of a `.connections` answer): `ConnectionSnapshot`'s properties in declaration order.
    public static let connectionFields = ["protocol", "client", "cport", "virtual", "vport", "destination", "dport",
                                          "state", "expires", "template"]
    /// The end of the `.connections` answer after its last entry (without the newline).
    public static let connectionsAnswerTrailer: StaticString = "]}"
}

/// A request or an answer in another version of the control protocol than this build's.
public struct ControlProtocolMismatch: Error, Equatable, Sendable {
    /// The version the other side speaks (0: a peer from before the version field).
    public var peerVersion: Int
    public init(peerVersion: Int) { self.peerVersion = peerVersion }
}

/// One request on the control socket (one JSON object per line).
public enum ControlRequest: Codable, Sendable, Equatable {
    case addService(ServiceKey, ServiceOptions)
    case editService(ServiceKey, ServiceOptions)
    case deleteService(ServiceKey)
    case clear
    case addDestination(ServiceKey, DestinationOptions)
    case editDestination(ServiceKey, DestinationOptions)
    case deleteDestination(ServiceKey, address: IPAddress, port: UInt16)
    /// Zero the counters of one service, or of everything when nil.
    case zero(ServiceKey?)
    /// `--set tcp tcpfin udp` (0 keeps a value).
    case setTimeouts(IPVSTimeouts)
    case startDaemon(SyncDaemonSnapshot)
    /// "master" or "backup".
    case stopDaemon(String)
    /// Services, destinations, counters, rates, timeouts and daemons.
    case snapshot
    /// The connection table (`-c`).
    case connections
    /// Daemon status lines (data plane, interfaces, counters) as text.
    case status
    /// Re-read the configuration file (as SIGHUP does); the answer is a text line.
    case reload
    /// Restart lvsd in place (`lvsadm daemon restart`): it answers, stops as for a restart (state
    /// saved, guard and BPF programs left) and re-executes its binary as it is on disk now.
    case restart
    /// Table changes applied in order as one change (see `ControlBatch`); the answer is `.batch`.
    case batch(ControlBatch)
    /// The kernel's run-time settings (`lvsadm daemon sysctl`): applies the assignments, all or
    /// none, then answers `.sysctls` with every value; an empty list only reads them.
    case sysctl([SysctlAssignment])
}

/// The answer to one `ControlRequest`.
public enum ControlResponse: Codable, Sendable, Equatable {
    case ok
    case failed(IPVSError)
    case snapshot(TableSnapshot)
    case connections([ConnectionSnapshot])
    case text(String)
    /// The request was in another protocol version (given) than lvsd's, which this answer carries.
    case versionMismatch(requested: Int)
    /// One answer per request of a `.batch`, in order (fewer when it stopped at a failure).
    case batch([ControlResponse])
    /// Every run-time setting's value (the answer to `.sysctl`).
    case sysctls(SysctlValues)
}

/// Something that executes control requests: the socket client in lvsadm, or an engine in tests.
public protocol ControlBackend {
    func execute(_ request: ControlRequest) throws -> ControlResponse
    /// Applies the batch's requests in order as one change (default: one `execute` each; see
    /// `ControlBatch` for what a failure does). One answer per request applied.
    func execute(batch: ControlBatch) throws -> [ControlResponse]
}

/// A backend that gives the entries of a `.connections` answer as they arrive (lvsadm's socket
/// client), so that a listing of a million entries is never held whole.
public protocol ConnectionStreamingBackend: ControlBackend {
    /// Asks for `.connections` and calls `body` with each entry: nil when every entry came so.
    /// Otherwise the answer as `execute` gives it; entries given to `body` before are then void
    /// (a `.connections` answer holds the whole list).
    func streamConnections(_ body: (ConnectionSnapshot) -> Void) throws -> ControlResponse?
}

// MARK: - Wire form

/// The keys of requests and answers; payload keys are named after what they hold.
private enum ControlKey: String, CodingKey {
    case version, request, answer
    case service, options, destination, address, port, timeouts, daemon, role
    case error, snapshot, connections, fields, text, requested
    case batch, answers
    case sysctls
}

/// Reads the `"version"` key (missing: 0, the unversioned form) and refuses any but this build's.
private func checkVersion(_ c: KeyedDecodingContainer<ControlKey>) throws {
    let version = try c.decodeIfPresent(Int.self, forKey: .version) ?? 0
    guard version == ControlProtocol.version else { throw ControlProtocolMismatch(peerVersion: version) }
}

extension ControlRequest {
    /// The `"request"` value of each case.
    private enum Name: String, Codable {
        case addService, editService, deleteService, clear, addDestination, editDestination, deleteDestination
        case zero, setTimeouts, startDaemon, stopDaemon, snapshot, connections, status, reload, batch, restart
        case sysctl
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: ControlKey.self)
        try checkVersion(c)
        switch try c.decode(Name.self, forKey: .request) {
        case .addService:
            self = .addService(try c.decode(ServiceKey.self, forKey: .service), try c.decode(ServiceOptions.self, forKey: .options))
        case .editService:
            self = .editService(try c.decode(ServiceKey.self, forKey: .service), try c.decode(ServiceOptions.self, forKey: .options))
        case .deleteService: self = .deleteService(try c.decode(ServiceKey.self, forKey: .service))
        case .clear: self = .clear
        case .addDestination:
            self = .addDestination(try c.decode(ServiceKey.self, forKey: .service),
                                   try c.decode(DestinationOptions.self, forKey: .destination))
        case .editDestination:
            self = .editDestination(try c.decode(ServiceKey.self, forKey: .service),
                                    try c.decode(DestinationOptions.self, forKey: .destination))
        case .deleteDestination:
            self = .deleteDestination(try c.decode(ServiceKey.self, forKey: .service),
                                      address: try c.decode(IPAddress.self, forKey: .address),
                                      port: try c.decode(UInt16.self, forKey: .port))
        case .zero: self = .zero(try c.decodeIfPresent(ServiceKey.self, forKey: .service))
        case .setTimeouts: self = .setTimeouts(try c.decode(IPVSTimeouts.self, forKey: .timeouts))
        case .startDaemon: self = .startDaemon(try c.decode(SyncDaemonSnapshot.self, forKey: .daemon))
        case .stopDaemon: self = .stopDaemon(try c.decode(String.self, forKey: .role))
        case .snapshot: self = .snapshot
        case .connections: self = .connections
        case .status: self = .status
        case .reload: self = .reload
        case .restart: self = .restart
        case .batch: self = .batch(try c.decode(ControlBatch.self, forKey: .batch))
        case .sysctl: self = .sysctl(try c.decode([SysctlAssignment].self, forKey: .sysctls))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: ControlKey.self)
        try c.encode(ControlProtocol.version, forKey: .version)
        switch self {
        case let .addService(key, options):
            try c.encode(Name.addService, forKey: .request)
            try c.encode(key, forKey: .service)
            try c.encode(options, forKey: .options)
        case let .editService(key, options):
            try c.encode(Name.editService, forKey: .request)
            try c.encode(key, forKey: .service)
            try c.encode(options, forKey: .options)
        case let .deleteService(key):
            try c.encode(Name.deleteService, forKey: .request)
            try c.encode(key, forKey: .service)
        case .clear: try c.encode(Name.clear, forKey: .request)
        case let .addDestination(key, destination):
            try c.encode(Name.addDestination, forKey: .request)
            try c.encode(key, forKey: .service)
            try c.encode(destination, forKey: .destination)
        case let .editDestination(key, destination):
            try c.encode(Name.editDestination, forKey: .request)
            try c.encode(key, forKey: .service)
            try c.encode(destination, forKey: .destination)
        case let .deleteDestination(key, address, port):
            try c.encode(Name.deleteDestination, forKey: .request)
            try c.encode(key, forKey: .service)
            try c.encode(address, forKey: .address)
            try c.encode(port, forKey: .port)
        case let .zero(key):
            try c.encode(Name.zero, forKey: .request)
            try c.encodeIfPresent(key, forKey: .service)
        case let .setTimeouts(timeouts):
            try c.encode(Name.setTimeouts, forKey: .request)
            try c.encode(timeouts, forKey: .timeouts)
        case let .startDaemon(daemon):
            try c.encode(Name.startDaemon, forKey: .request)
            try c.encode(daemon, forKey: .daemon)
        case let .stopDaemon(role):
            try c.encode(Name.stopDaemon, forKey: .request)
            try c.encode(role, forKey: .role)
        case .snapshot: try c.encode(Name.snapshot, forKey: .request)
        case .connections: try c.encode(Name.connections, forKey: .request)
        case .status: try c.encode(Name.status, forKey: .request)
        case .reload: try c.encode(Name.reload, forKey: .request)
        case .restart: try c.encode(Name.restart, forKey: .request)
        case let .batch(batch):
            try c.encode(Name.batch, forKey: .request)
            try c.encode(batch, forKey: .batch)
        case let .sysctl(assignments):
            try c.encode(Name.sysctl, forKey: .request)
            try c.encode(assignments, forKey: .sysctls)
        }
    }
}

extension ControlResponse {
    /// The `"answer"` value of each case.
    private enum Name: String, Codable {
        case ok, failed, snapshot, connections, text, versionMismatch, batch, sysctls
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: ControlKey.self)
        try checkVersion(c)
        switch try c.decode(Name.self, forKey: .answer) {
        case .ok: self = .ok
        case .failed: self = .failed(try c.decode(IPVSError.self, forKey: .error))
        case .snapshot: self = .snapshot(try c.decode(TableSnapshot.self, forKey: .snapshot))
        case .connections: self = .connections(try Self.decodeConnections(c))
        case .text: self = .text(try c.decode(String.self, forKey: .text))
        case .versionMismatch: self = .versionMismatch(requested: try c.decode(Int.self, forKey: .requested))
        case .batch: self = .batch(try c.decode([ControlResponse].self, forKey: .answers))
        case .sysctls:
            guard let values = SysctlValues(try c.decode([SysctlAssignment].self, forKey: .sysctls)) else {
                throw DecodingError.dataCorruptedError(forKey: .sysctls, in: c, debugDescription: "a sysctls answer without every setting")
            }
            self = .sysctls(values)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: ControlKey.self)
        try c.encode(ControlProtocol.version, forKey: .version)
        switch self {
        case .ok: try c.encode(Name.ok, forKey: .answer)
        case let .failed(error):
            try c.encode(Name.failed, forKey: .answer)
            try c.encode(error, forKey: .error)
        case let .snapshot(table):
            try c.encode(Name.snapshot, forKey: .answer)
            try c.encode(table, forKey: .snapshot)
        case let .connections(list):
            try c.encode(Name.connections, forKey: .answer)
            try c.encode(ControlProtocol.connectionFields, forKey: .fields)
            var rows = c.nestedUnkeyedContainer(forKey: .connections)
            for e in list {
                var row = rows.nestedUnkeyedContainer()
                try row.encode(e.protocolName)
                try row.encode(e.clientAddress)
                try row.encode(e.clientPort)
                try row.encode(e.virtualAddress)
                try row.encode(e.virtualPort)
                try row.encode(e.destinationAddress)
                try row.encode(e.destinationPort)
                try row.encode(e.state)
                try row.encode(e.expiresSeconds)
                try row.encode(e.isTemplate)
            }
        case let .text(text):
            try c.encode(Name.text, forKey: .answer)
            try c.encode(text, forKey: .text)
        case let .versionMismatch(requested):
            try c.encode(Name.versionMismatch, forKey: .answer)
            try c.encode(requested, forKey: .requested)
        case let .batch(answers):
            try c.encode(Name.batch, forKey: .answer)
            try c.encode(answers, forKey: .answers)
        case let .sysctls(values):
            try c.encode(Name.sysctls, forKey: .answer)
            try c.encode(values.assignments, forKey: .sysctls)
        }
    }

    /// The entries of a `.connections` answer: `"fields"` names each entry's values (any order;
    /// every field of `ControlProtocol.connectionFields` once, no other), `"connections"` holds
    /// one array of values per entry.
    private static func decodeConnections(_ c: KeyedDecodingContainer<ControlKey>) throws -> [ConnectionSnapshot] {
        let fields = try c.decode([String].self, forKey: .fields)
        guard fields.count == ControlProtocol.connectionFields.count, Set(fields) == Set(ControlProtocol.connectionFields) else {
            throw DecodingError.dataCorruptedError(forKey: .fields, in: c, debugDescription: "unknown connection fields \(fields)")
        }
        var rows = try c.nestedUnkeyedContainer(forKey: .connections)
        var list: [ConnectionSnapshot] = []
        let none = IPAddress.ipv4Zero
        while !rows.isAtEnd {
            var row = try rows.nestedUnkeyedContainer()
            var e = ConnectionSnapshot(protocolName: "", clientAddress: none, clientPort: 0, virtualAddress: none, virtualPort: 0,
                                       destinationAddress: none, destinationPort: 0, state: "", expiresSeconds: 0)
            for field in fields {
                switch field {
                case "protocol": e.protocolName = try row.decode(String.self)
                case "client": e.clientAddress = try row.decode(IPAddress.self)
                case "cport": e.clientPort = try row.decode(UInt16.self)
                case "virtual": e.virtualAddress = try row.decode(IPAddress.self)
                case "vport": e.virtualPort = try row.decode(UInt16.self)
                case "destination": e.destinationAddress = try row.decode(IPAddress.self)
                case "dport": e.destinationPort = try row.decode(UInt16.self)
                case "state": e.state = try row.decode(String.self)
                case "expires": e.expiresSeconds = try row.decode(UInt32.self)
                default: e.isTemplate = try row.decode(Bool.self) // "template": the set was checked
                }
            }
            guard row.isAtEnd else {
                throw DecodingError.dataCorruptedError(in: row, debugDescription: "a connection entry with more values than fields")
            }
            list.append(e)
        }
        return list
    }
}
