/// Frames a shard sends outside the forwarding path: frames that waited for a real server's
/// MAC, and ICMP errors to clients. Preallocated; owned by the shard's thread.
public struct Outbox {
    public static let slotSize = 2048
    public let capacity: Int
    @usableFromInline let storage: UnsafeMutableRawPointer
    @usableFromInline let lengths: UnsafeMutablePointer<Int>
    @usableFromInline let interfaces: UnsafeMutablePointer<Int32>
    public internal(set) var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        storage = .allocate(byteCount: capacity * Self.slotSize, alignment: 64)
        lengths = .allocate(capacity: capacity)
        interfaces = .allocate(capacity: capacity)
    }

    func deallocate() {
        storage.deallocate()
        lengths.deallocate()
        interfaces.deallocate()
    }

    /// A slot to write a frame of at most `slotSize` bytes into, or nil when full.
    mutating func reserve(length: Int, interface: Int32) -> UnsafeMutableRawPointer? {
        guard count < capacity, length <= Self.slotSize else { return nil }
        lengths[count] = length
        interfaces[count] = interface
        count += 1
        return storage + (count - 1) * Self.slotSize
    }

    /// Hands every queued frame to `send` and empties the box.
    public mutating func drain(_ send: (UnsafeRawBufferPointer, Int32) -> Void) {
        for i in 0..<count {
            send(UnsafeRawBufferPointer(start: storage + i * Self.slotSize, count: lengths[i]), interfaces[i])
        }
        count = 0
    }
}

/// A frame held while its real server's MAC is being resolved.
@usableFromInline struct HeldFrame {
    var destSlot: UInt32
    var length: Int
    var l3Offset: Int
    var ipv6: Bool
    var deadline: UInt32
    /// How it is sent once the MAC is known: encapsulated (tunnel) or as DR.
    var method: ConnectionMethod
}
