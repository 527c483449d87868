/// Table changes applied as one: lvsd follows the result with one snapshot for its kernel guard
/// (the nftables table, or the BPF programs' VIP and fwmark maps) and at most one `nft` run,
/// instead of one of each per change. `lvsadm -R`, the keepalived health monitor (start-up,
/// reload, a check's result) and lvsd's rules-file loader send their changes so.
///
/// Failure: the requests apply one by one, in order, as the kernel applies ipvsadm's commands;
/// nothing is rolled back. A failing request's answer is its `.failed`, and the requests after it
/// still apply (`ipvsadm -R`), or, with `stopAtFirstFailure`, the batch ends there: the answers stop
/// at the failing request, so its index is the count of answers minus one.
public struct ControlBatch: Codable, Sendable, Equatable {
    public var requests: [ControlRequest]
    public var stopAtFirstFailure: Bool

    public init(_ requests: [ControlRequest], stopAtFirstFailure: Bool = false) {
        self.requests = requests
        self.stopAtFirstFailure = stopAtFirstFailure
    }

    /// Applies the requests with `execute` as described above. A request that is no table change
    /// (`isBatchable` false: a listing, a daemon, a nested batch) is answered `.failed(.invalid)`
    /// without being applied.
    public func run(_ execute: (ControlRequest) throws -> ControlResponse) rethrows -> [ControlResponse] {
        var answers: [ControlResponse] = []
        answers.reserveCapacity(requests.count)
        for request in requests {
            let answer = request.isBatchable ? try execute(request) : .failed(.invalid)
            answers.append(answer)
            if stopAtFirstFailure, case .failed = answer { break }
        }
        return answers
    }

    /// The first failed answer: the index of its request and the error.
    public static func firstFailure(_ answers: [ControlResponse]) -> (index: Int, error: IPVSError)? {
        for (i, answer) in answers.enumerated() {
            if case let .failed(e) = answer { return (i, e) }
        }
        return nil
    }
}

extension ControlRequest {
    /// A change of the table (services, destinations, counters, timeouts): what a batch may hold.
    public var isBatchable: Bool {
        switch self {
        case .addService, .editService, .deleteService, .clear, .addDestination, .editDestination,
             .deleteDestination, .zero, .setTimeouts:
            return true
        case .startDaemon, .stopDaemon, .snapshot, .connections, .status, .reload, .restart, .batch, .sysctl:
            return false
        }
    }

    /// A change of the services or destinations (lvsd's kernel guard follows those).
    public var changesConfiguration: Bool {
        switch self {
        case .addService, .editService, .deleteService, .clear, .addDestination, .editDestination, .deleteDestination:
            return true
        default:
            return false
        }
    }

    /// Whether this request, answered `response`, changed services or destinations (a batch: if
    /// any of its requests did).
    public func changedConfiguration(_ response: ControlResponse) -> Bool {
        switch (self, response) {
        case let (.batch(batch), .batch(answers)):
            return zip(batch.requests, answers).contains { $0.changedConfiguration($1) }
        case (_, .ok):
            return changesConfiguration
        default:
            return false
        }
    }
}

extension ControlBackend {
    /// One `execute` per request (a backend that cannot take `.batch`).
    public func execute(batch: ControlBatch) throws -> [ControlResponse] {
        try batch.run { try execute($0) }
    }

    /// Sends the batch as one `.batch` request and returns its answers.
    public func executeAsOneRequest(_ batch: ControlBatch) throws -> [ControlResponse] {
        let response = try execute(.batch(batch))
        guard case let .batch(answers) = response, answers.count <= batch.requests.count else {
            throw UnexpectedControlAnswer(response: response)
        }
        return answers
    }
}

/// lvsd answered a request with an answer of the wrong kind (lvsadm shows lvsd's text, if any).
public struct UnexpectedControlAnswer: Error, Equatable, Sendable {
    public var response: ControlResponse
    public init(response: ControlResponse) { self.response = response }
}
