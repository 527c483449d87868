import LVSCore

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
    /// Table changes applied in order as one change (see `ControlBatch`); the answer is `.batch`.
    case batch(ControlBatch)
}

/// The answer to one `ControlRequest`.
public enum ControlResponse: Codable, Sendable, Equatable {
    case ok
    case failed(IPVSError)
    case snapshot(TableSnapshot)
    case connections([ConnectionSnapshot])
    case text(String)
    /// One answer per request of a `.batch`, in order (fewer when it stopped at a failure).
    case batch([ControlResponse])
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
