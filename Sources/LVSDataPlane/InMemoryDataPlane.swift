import LVSCore

/// A frame a data plane transmitted.
public struct TransmittedFrame: Equatable, Sendable {
    public var interface: Int32
    public var bytes: [UInt8]
    /// The virtio_net_hdr it was sent with (copied from receive for `.forward`, zero for `.reply`).
    public var vnetHeader: [UInt8]
}

/// The data plane's verdict handling without sockets, for tests: feed frames, collect what would
/// have been transmitted per interface. Same semantics and counters as `DataPlaneWorker`.
public final class InMemoryDataPlane<P: FrameProcessor> {
    public let processor: P
    public let interfaces: [Int32]
    public private(set) var transmitted: [TransmittedFrame] = []
    private let counterBlock: CounterBlock

    public static var zeroVnetHeader: [UInt8] { [UInt8](repeating: 0, count: PacketSocket.vnetHeaderLength) }

    public init(processor: P, interfaces: [Int32]) {
        self.processor = processor
        self.interfaces = interfaces
        counterBlock = CounterBlock(rows: interfaces.count)
    }

    /// Processes one frame received on `interface` and records the resulting transmission, if any.
    @discardableResult
    public func feed(_ frame: [UInt8], interface: Int32, vnetHeader: [UInt8]? = nil,
                     now: UInt64 = monotonicNanoseconds()) -> Verdict {
        guard let ingress = interfaces.firstIndex(of: interface) else {
            preconditionFailure("interface \(interface) not in \(interfaces)")
        }
        let row = counterBlock.row(ingress)
        var buffer = frame
        bump(row, Counter.rxPackets.rawValue)
        bump(row, Counter.rxBytes.rawValue, UInt64(frame.count))
        let verdict = buffer.withUnsafeMutableBytes { processor.process($0, interface: interface, now: now) }
        switch verdict {
        case .pass:
            bump(row, Counter.passed.rawValue)
        case .drop(let reason):
            bump(row, Counter.dropped.rawValue)
            bump(row, Counter.reason(reason))
        case .forward(let egress):
            if let out = interfaces.firstIndex(of: egress) {
                transmit(TransmittedFrame(interface: egress, bytes: buffer,
                                          vnetHeader: vnetHeader ?? Self.zeroVnetHeader), row: out)
            } else {
                bump(row, Counter.unknownEgress.rawValue)
            }
        case .reply(let length):
            if length < 14 || length > buffer.count {
                bump(row, Counter.txErrors.rawValue)
            } else {
                transmit(TransmittedFrame(interface: interface, bytes: Array(buffer[0..<length]),
                                          vnetHeader: Self.zeroVnetHeader), row: ingress)
            }
        }
        return verdict
    }

    private func transmit(_ frame: TransmittedFrame, row: Int) {
        transmitted.append(frame)
        bump(counterBlock.row(row), Counter.txPackets.rawValue)
        bump(counterBlock.row(row), Counter.txBytes.rawValue, UInt64(frame.bytes.count))
    }

    /// Frames transmitted on `interface`, oldest first.
    public func transmitted(on interface: Int32) -> [[UInt8]] {
        transmitted.filter { $0.interface == interface }.map(\.bytes)
    }

    /// Returns and forgets everything transmitted so far.
    public func takeTransmitted() -> [TransmittedFrame] {
        defer { transmitted = [] }
        return transmitted
    }

    public func tick(now: UInt64 = monotonicNanoseconds()) { processor.tick(now: now) }

    public func counters() -> [Int32: InterfaceCounters] {
        var out: [Int32: InterfaceCounters] = [:]
        for (i, index) in interfaces.enumerated() { out[index] = counterBlock.snapshot(row: i) }
        return out
    }
}
