import CLVSShim
import Dispatch
import Glibc
import LVSControl
import LVSCore
import LVSDataPlane
import Logging
import Synchronization

/// The engine as the data plane drives it: frames go straight to `Engine.process`; control
/// requests queued by the control socket are applied between batches, on the worker's thread,
/// so the engine stays single-threaded and the packet path takes no lock.
final class Director: FrameProcessor {
    let engine: Engine
    let logger: Logger
    let sender: Int32
    private let queue = Mutex<[PendingRequest]>([])
    /// Non-zero while requests are queued: one relaxed load per tick.
    private let pendingFlag: UnsafeMutablePointer<UInt64>
    private var lastNeighbourCheck: UInt64 = 0
    private var reportedUnreachable: Set<String> = []

    final class PendingRequest: @unchecked Sendable {
        let request: ControlRequest
        var response: ControlResponse = .ok
        let done = DispatchSemaphore(value: 0)
        init(_ r: ControlRequest) { request = r }
    }

    init(engine: Engine, logger: Logger) throws {
        self.engine = engine
        self.logger = logger
        sender = clvs_packet_open_sender()
        guard sender >= 0 else { throw DataPlaneError.system(call: "socket(AF_PACKET)", errno: errno, context: "neighbour sender") }
        pendingFlag = .allocate(capacity: 1)
        pendingFlag.initialize(to: 0)
    }

    deinit {
        close(sender)
        pendingFlag.deallocate()
    }

    @inline(__always)
    func process(_ frame: UnsafeMutableRawBufferPointer, interface: Int32, now: UInt64) -> Verdict {
        engine.process(frame, interface: interface, now: now)
    }

    func tick(now: UInt64) {
        if clvs_load_relaxed_u64(pendingFlag) != 0 { drainRequests(now: now) }
        engine.tick(now: now)
        sendPendingFrames(now: now)
    }

    /// Called from the control thread: queues the request and waits for the worker to apply it.
    func submit(_ request: ControlRequest) -> ControlResponse {
        let item = PendingRequest(request)
        queue.withLock { $0.append(item) }
        clvs_store_relaxed_u64(pendingFlag, 1)
        item.done.wait()
        return item.response
    }

    private func drainRequests(now: UInt64) {
        let items = queue.withLock { q -> [PendingRequest] in
            let taken = q
            q.removeAll()
            return taken
        }
        clvs_store_relaxed_u64(pendingFlag, 0)
        for item in items {
            item.response = EngineControl.execute(item.request, on: engine, now: now)
            if case let .failed(e) = item.response {
                logger.debug("control request refused", metadata: ["request": "\(item.request)", "error": "\(e.errnoName)"])
            }
            item.done.signal()
        }
        if !items.isEmpty { sendPendingFrames(now: now) }
    }

    private func sendPendingFrames(now: UInt64) {
        for frame in engine.pendingFrames(now: now) {
            let sent = frame.bytes.withUnsafeBytes { clvs_packet_sendto(sender, frame.interface, $0.baseAddress, $0.count) }
            if sent < 0 {
                logger.warning("cannot send neighbour frame", metadata: ["interface": "\(frame.interface)", "errno": "\(errno)"])
            }
        }
        // Once per destination: say so when a real server does not answer ARP/ND.
        if now &- lastNeighbourCheck >= 3_000_000_000 {
            lastNeighbourCheck = now
            for d in engine.unresolvedDestinations() {
                let name = "\(d.address.bracketed):\(d.port)"
                if reportedUnreachable.insert(name).inserted {
                    logger.warning("real server does not answer ARP/ND; DR needs it on a directly connected network; its packets are dropped (neighbour-unresolved)",
                                   metadata: ["real_server": "\(name)"])
                }
            }
        }
    }
}
