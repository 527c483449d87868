import LVSModel

/// A backend that tells its owner when services or destinations changed: once per request, and
/// once per batch whatever its size (lvsd: its kernel guard then follows with one snapshot and at
/// most one `nft` run).
public final class ChangeNotifyingBackend: ControlBackend {
    private let run: (ControlRequest) -> ControlResponse
    private let onChange: () -> Void

    /// `execute` applies one request (a `.batch` too); `onChange` runs after a change.
    public init(execute: @escaping (ControlRequest) -> ControlResponse, onChange: @escaping () -> Void) {
        run = execute
        self.onChange = onChange
    }

    public func execute(_ request: ControlRequest) -> ControlResponse {
        let response = run(request)
        if request.changedConfiguration(response) { onChange() }
        return response
    }

    public func execute(batch: ControlBatch) throws -> [ControlResponse] {
        try executeAsOneRequest(batch)
    }
}
