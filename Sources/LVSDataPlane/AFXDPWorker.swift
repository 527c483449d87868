import Glibc
import CLVSShim
import CLVSXDP
import LVSCore

/// Per-socket state the loop touches: raw pointers and plain values only.
@usableFromInline
struct XSKState {
    @usableFromInline var xsk: UnsafeMutablePointer<clvs_xsk>
    @usableFromInline var rx: UnsafeMutablePointer<clvs_ring>
    @usableFromInline var tx: UnsafeMutablePointer<clvs_ring>
    @usableFromInline var fill: UnsafeMutablePointer<clvs_ring>
    @usableFromInline var comp: UnsafeMutablePointer<clvs_ring>
    @usableFromInline var area: UnsafeMutableRawPointer
    @usableFromInline var fd: Int32
    @usableFromInline var ifindex: Int32
    @usableFromInline var frameMask: UInt64
    /// Stack of free UMEM frame addresses (neither in a ring nor being processed).
    @usableFromInline var free: UnsafeMutablePointer<UInt64>
    @usableFromInline var freeCount: Int
    /// Descriptors written to the TX ring but not yet submitted / not yet taken by the kernel.
    @usableFromInline var txReserved: UInt32
    @usableFromInline var txOutstanding: Bool
    @usableFromInline var counters: CounterRow
}

/// One AF_XDP data-plane thread: owns the sockets of some queues of every interface (and, for
/// worker 0, the neighbour taps), hands each received frame to the processor in place in UMEM,
/// transmits on the TX ring of the egress interface's socket (copying into that socket's UMEM when
/// it is another socket), and recycles frames through the fill and completion rings.
///
/// Verdicts: `.forward` and `.reply` transmit; `.drop` recycles; `.pass` also recycles and counts
/// `passDropped`: a frame the XDP program redirected cannot be handed back to the kernel, and the
/// program only redirects what the director owns (VIP traffic, ARP requests and neighbour
/// solicitations for VIPs).
///
/// Senders on veth leave TCP/UDP checksums to "hardware" (CHECKSUM_PARTIAL) and that metadata is
/// lost in XDP, so every received TCP/UDP frame whose checksum field holds just the pseudo-header
/// sum gets its checksum completed before processing (`clvs_complete_l4_checksum`).
public final class AFXDPWorker<P: FrameProcessor> {
    public let processor: P
    public let sockets: [AFXDPSocket]
    /// ARP/NS/NA taps (fds) and their interface indexes; the worker owns and closes them.
    public let taps: [(fd: Int32, ifindex: Int32)]
    public let batchSize: Int
    public let tickInterval: UInt64

    @usableFromInline let count: Int
    @usableFromInline let tapCount: Int
    @usableFromInline let state: UnsafeMutablePointer<XSKState>
    @usableFromInline let pollfds: UnsafeMutablePointer<pollfd>
    @usableFromInline let tapFDs: UnsafeMutablePointer<Int32>
    @usableFromInline let tapIndexes: UnsafeMutablePointer<Int32>
    @usableFromInline let tapBuffer: UnsafeMutableRawPointer
    @usableFromInline let tapBufferSize = 2048
    @usableFromInline let counterBlock: CounterBlock
    @usableFromInline let stopFlag: AtomicWords
    /// For each socket, the socket this worker transmits on for a given egress ifindex: looked up
    /// linearly (few interfaces).
    @usableFromInline let egressIndex: UnsafeMutablePointer<Int32>
    /// See `AFXDPConfiguration.spinNanoseconds`.
    @usableFromInline let spinNs: UInt64

    public init(processor: P, sockets: [AFXDPSocket], taps: [(fd: Int32, ifindex: Int32)] = [],
                batchSize: Int = 64, tickInterval: UInt64 = 100_000_000, spinNanoseconds: UInt64 = 0) {
        self.spinNs = spinNanoseconds
        precondition(!sockets.isEmpty && batchSize > 0)
        self.processor = processor
        self.sockets = sockets
        self.taps = taps
        self.batchSize = batchSize
        self.tickInterval = max(1_000_000, min(tickInterval, 100_000_000))
        count = sockets.count
        tapCount = taps.count
        counterBlock = CounterBlock(rows: sockets.count + taps.count)
        stopFlag = AtomicWords(count: 1)
        pollfds = .allocate(capacity: sockets.count + taps.count)
        tapFDs = .allocate(capacity: max(1, taps.count))
        tapIndexes = .allocate(capacity: max(1, taps.count))
        tapBuffer = .allocate(byteCount: tapBufferSize, alignment: 64)
        egressIndex = .allocate(capacity: sockets.count)
        state = .allocate(capacity: sockets.count)
        for (i, s) in sockets.enumerated() {
            let raw = UnsafeMutableRawPointer(s.xsk)
            func ring(_ key: KeyPath<clvs_xsk, clvs_ring>) -> UnsafeMutablePointer<clvs_ring> {
                (raw + MemoryLayout<clvs_xsk>.offset(of: key)!).assumingMemoryBound(to: clvs_ring.self)
            }
            let frames = Int(s.xsk.pointee.frame_count)
            let frameSize = UInt64(s.xsk.pointee.frame_size)
            let free = UnsafeMutablePointer<UInt64>.allocate(capacity: frames)
            for f in 0..<frames { free[f] = UInt64(frames - 1 - f) * frameSize }
            (state + i).initialize(to: XSKState(
                xsk: s.xsk, rx: ring(\.rx), tx: ring(\.tx), fill: ring(\.fill), comp: ring(\.comp),
                area: UnsafeMutableRawPointer(s.xsk.pointee.area!), fd: s.fd, ifindex: s.interface.index,
                frameMask: ~(frameSize - 1), free: free, freeCount: frames, txReserved: 0, txOutstanding: false,
                counters: counterBlock.row(i)))
            pollfds[i] = pollfd(fd: s.fd, events: Int16(POLLIN), revents: 0)
            egressIndex[i] = s.interface.index
        }
        for (t, tap) in taps.enumerated() {
            tapFDs[t] = tap.fd
            tapIndexes[t] = tap.ifindex
            pollfds[count + t] = pollfd(fd: tap.fd, events: Int16(POLLIN), revents: 0)
        }
        // Hand frames to the kernel: fill each fill ring to half the UMEM.
        for i in 0..<count { refill(i) }
    }

    deinit {
        for i in 0..<count { state[i].free.deallocate() }
        for t in 0..<tapCount { close(tapFDs[t]) }
        state.deallocate()
        pollfds.deallocate()
        tapFDs.deallocate()
        tapIndexes.deallocate()
        tapBuffer.deallocate()
        egressIndex.deallocate()
        stopFlag.deallocate()
    }

    public func requestStop() { stopFlag.store(0, 1) }
    public var isStopRequested: Bool { stopFlag.load(0) != 0 }

    /// Counters per interface index (sockets of the same interface and its tap summed).
    public func counters() -> [Int32: InterfaceCounters] {
        var out: [Int32: InterfaceCounters] = [:]
        for (i, s) in sockets.enumerated() { out[s.interface.index, default: InterfaceCounters()] += counterBlock.snapshot(row: i) }
        for (t, tap) in taps.enumerated() { out[tap.ifindex, default: InterfaceCounters()] += counterBlock.snapshot(row: count + t) }
        return out
    }

    @inlinable
    public func run() {
        var lastTick = clvs_now_ns()
        var lastWork = lastTick
        while stopFlag.load(0) == 0 {
            let now = clvs_now_ns()
            var got = 0
            for i in 0..<count { got += drain(i, now: now) }
            for t in 0..<tapCount { got += drainTap(t, now: now) }
            if got > 0 { processor.afterBatch(now: now); lastWork = now }
            var busy = false
            for i in 0..<count {
                complete(i)
                refill(i)
                if state[i].txOutstanding { kick(i) }
                busy = busy || state[i].txOutstanding
            }
            var t = got == 0 ? now : clvs_now_ns()
            if got == 0 && !busy && t &- lastWork < spinNs {
                // Traffic just passed: check again soon instead of sleeping (a wake-up costs more).
                sched_yield()
                t = clvs_now_ns()
            } else if got == 0 {
                let untilTick = lastTick &+ tickInterval &- t
                var timeout = t &- lastTick >= tickInterval ? 0 : Int32(min(untilTick / 1_000_000 + 1, 100))
                if busy { timeout = min(timeout, 1) }
                _ = clvs_poll_in(pollfds, Int32(count + tapCount), timeout)
                t = clvs_now_ns()
            }
            if t &- lastTick >= tickInterval {
                processor.tick(now: t)
                lastTick = t
            }
        }
    }

    /// Processes up to `batchSize` frames of the RX ring of socket `si`, then transmits.
    @inlinable @inline(__always)
    func drain(_ si: Int, now: UInt64) -> Int {
        let s = state + si
        var idx: UInt32 = 0
        let n = Int(clvs_cons_peek(s.pointee.rx, UInt32(batchSize), &idx))
        guard n > 0 else { return 0 }
        let row = s.pointee.counters
        for k in 0..<n {
            let desc = clvs_desc_slot(s.pointee.rx, idx &+ UInt32(k))
            processor.prefetch(UnsafeRawBufferPointer(start: s.pointee.area + Int(desc.pointee.addr), count: Int(desc.pointee.len)))
        }
        processor.prefetchDone()
        for k in 0..<n {
            let desc = clvs_desc_slot(s.pointee.rx, idx &+ UInt32(k))
            let addr = desc.pointee.addr
            let length = Int(desc.pointee.len)
            let data = s.pointee.area + Int(addr)
            bump(row, Counter.rxPackets.rawValue)
            bump(row, Counter.rxBytes.rawValue, UInt64(length))
            _ = clvs_complete_l4_checksum(data.assumingMemoryBound(to: UInt8.self), UInt32(length))
            let frame = UnsafeMutableRawBufferPointer(start: data, count: length)
            switch processor.process(frame, interface: s.pointee.ifindex, now: now) {
            case .pass:
                bump(row, Counter.passed.rawValue)
                bump(row, Counter.passDropped.rawValue)
                recycle(si, addr)
            case .drop(let reason):
                bump(row, Counter.dropped.rawValue)
                bump(row, Counter.reason(reason))
                recycle(si, addr)
            case .forward(let egress):
                if egress == s.pointee.ifindex {
                    transmit(si, addr, length, owner: si)
                } else {
                    var target = -1
                    for j in 0..<count where egressIndex[j] == egress { target = j; break }
                    if target < 0 {
                        bump(row, Counter.unknownEgress.rawValue)
                    } else {
                        copyAndTransmit(target, data, length)
                    }
                    recycle(si, addr)
                }
            case .reply(let replyLength):
                if replyLength < 14 || replyLength > length {
                    bump(row, Counter.txErrors.rawValue)
                    recycle(si, addr)
                } else {
                    transmit(si, addr, replyLength, owner: si)
                }
            }
        }
        clvs_cons_release(s.pointee.rx, UInt32(n))
        for j in 0..<count where state[j].txReserved > 0 {
            clvs_prod_submit(state[j].tx, state[j].txReserved)
            state[j].txReserved = 0
            state[j].txOutstanding = true
            kick(j)
        }
        return n
    }

    /// Frames of the neighbour tap: already delivered to the kernel, seen here so the engine learns
    /// MACs; a reply (should one come) is sent on the tap socket.
    @inlinable
    func drainTap(_ t: Int, now: UInt64) -> Int {
        let row = counterBlock.row(count + t)
        var got = 0
        while got < batchSize {
            let n = recv(tapFDs[t], tapBuffer, tapBufferSize, Int32(MSG_DONTWAIT))
            if n < 14 { break }
            got += 1
            bump(row, Counter.rxPackets.rawValue)
            bump(row, Counter.rxBytes.rawValue, UInt64(n))
            let frame = UnsafeMutableRawBufferPointer(start: tapBuffer, count: n)
            switch processor.process(frame, interface: tapIndexes[t], now: now) {
            case .reply(let length) where length >= 14 && length <= n:
                if send(tapFDs[t], tapBuffer, length, Int32(MSG_DONTWAIT)) == length {
                    bump(row, Counter.txPackets.rawValue)
                } else {
                    bump(row, Counter.txErrors.rawValue)
                }
            default:
                bump(row, Counter.passed.rawValue)
            }
        }
        return got
    }

    @inlinable @inline(__always)
    func recycle(_ si: Int, _ addr: UInt64) {
        let s = state + si
        s.pointee.free[s.pointee.freeCount] = addr & s.pointee.frameMask
        s.pointee.freeCount += 1
    }

    /// Puts UMEM frame `addr` of socket `si` on its TX ring (submitted after the batch).
    @inlinable @inline(__always)
    func transmit(_ si: Int, _ addr: UInt64, _ length: Int, owner: Int) {
        let s = state + si
        var idx: UInt32 = 0
        guard clvs_prod_reserve(s.pointee.tx, 1, &idx) == 1 else {
            bump(s.pointee.counters, Counter.txErrors.rawValue)
            recycle(owner, addr)
            return
        }
        let d = clvs_desc_slot(s.pointee.tx, idx)
        d.pointee.addr = addr
        d.pointee.len = UInt32(length)
        d.pointee.options = 0
        s.pointee.txReserved &+= 1
        bump(s.pointee.counters, Counter.txPackets.rawValue)
        bump(s.pointee.counters, Counter.txBytes.rawValue, UInt64(length))
    }

    /// Copies a frame into a free UMEM frame of socket `target` and queues it there.
    @inlinable @inline(__always)
    func copyAndTransmit(_ target: Int, _ data: UnsafeMutableRawPointer, _ length: Int) {
        let t = state + target
        guard t.pointee.freeCount > 0, length <= Int(~t.pointee.frameMask &+ 1) else {
            bump(t.pointee.counters, Counter.txErrors.rawValue)
            return
        }
        t.pointee.freeCount -= 1
        let addr = t.pointee.free[t.pointee.freeCount]
        memcpy(t.pointee.area + Int(addr), data, length)
        transmit(target, addr, length, owner: target)
    }

    /// Copy mode transmits inside sendto; it takes a limited number of frames per call, so call it
    /// again while descriptors remain (and from the loop when the queue was busy).
    @inlinable
    func kick(_ si: Int) {
        let s = state + si
        for _ in 0..<16 {
            if s.pointee.tx.pointee.consumer.pointee == s.pointee.tx.pointee.producer.pointee {
                s.pointee.txOutstanding = false
                return
            }
            let rc = clvs_xsk_kick_tx(s.pointee.fd)
            if rc != 0 && rc != -EAGAIN && rc != -EINTR {
                if rc != -EBUSY && rc != -ENOBUFS { bump(s.pointee.counters, Counter.txErrors.rawValue) }
                return
            }
        }
    }

    /// Takes transmitted frames back from the completion ring.
    @inlinable @inline(__always)
    func complete(_ si: Int) {
        let s = state + si
        var idx: UInt32 = 0
        let n = clvs_cons_peek(s.pointee.comp, 1024, &idx)
        guard n > 0 else { return }
        for k in 0..<n { recycle(si, clvs_addr_slot(s.pointee.comp, idx &+ k).pointee) }
        clvs_cons_release(s.pointee.comp, n)
    }

    /// Keeps the fill ring stocked, leaving half the UMEM for transmissions and copies.
    @inlinable @inline(__always)
    func refill(_ si: Int) {
        let s = state + si
        let reserve = Int(s.pointee.xsk.pointee.frame_count) / 2
        let spare = s.pointee.freeCount - reserve
        guard spare > 0 else { return }
        var idx: UInt32 = 0
        let n = Int(clvs_prod_reserve(s.pointee.fill, UInt32(spare), &idx))
        guard n > 0 else { return }
        for k in 0..<n {
            s.pointee.freeCount -= 1
            clvs_addr_slot(s.pointee.fill, idx &+ UInt32(k)).pointee = s.pointee.free[s.pointee.freeCount]
        }
        clvs_prod_submit(s.pointee.fill, UInt32(n))
    }
}
