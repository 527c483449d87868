import Glibc
import CLVSShim
import LVSCore

/// Per-socket state the loop touches: plain values and raw pointers only (no ARC in the loop).
@usableFromInline
struct SocketState {
    @usableFromInline var fd: Int32
    @usableFromInline var ifindex: Int32
    @usableFromInline var ring: UnsafeMutableRawPointer
    @usableFromInline var frameSize: Int
    @usableFromInline var frameCount: Int
    @usableFromInline var head: Int
    @usableFromInline var msgs: UnsafeMutablePointer<clvs_mmsghdr>
    @usableFromInline var iovs: UnsafeMutablePointer<iovec>
    @usableFromInline var txCount: Int
    @usableFromInline var counters: CounterRow
    /// The interface MTU: a larger frame without GSO metadata is fragmented before sending.
    @usableFromInline var mtu: Int
    /// For a socket bound to one EtherType: the sockaddr_ll every message is sent to (protocol 0,
    /// so the kernel reads each frame's type from its header); nil for ETH_P_ALL.
    @usableFromInline var sendAddress: UnsafeMutableRawPointer?
}

/// One data-plane thread: polls the sockets of all interfaces, hands each received frame to the
/// processor straight from the receive ring, and transmits in sendmmsg batches.
///
/// `run()` blocks until `requestStop()`; it wakes at least every `tickInterval` (≤ 100 ms) and then
/// calls `processor.tick(now:)`.
public final class DataPlaneWorker<P: FrameProcessor> {
    public let processor: P
    public let sockets: [PacketSocket]
    public let batchSize: Int
    public let tickInterval: UInt64
    /// See `DataPlaneConfiguration.spinNanoseconds`.
    @usableFromInline let spinNs: UInt64

    @usableFromInline let count: Int
    @usableFromInline let state: UnsafeMutablePointer<SocketState>
    @usableFromInline let pollfds: UnsafeMutablePointer<pollfd>
    @usableFromInline let counterBlock: CounterBlock
    @usableFromInline let stopFlag: AtomicWords
    /// Ring slots consumed in the current batch, handed back after the transmit flush.
    @usableFromInline let pending: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// Buffers for frames larger than a ring slot (read from the socket queue, TP_STATUS_COPY).
    @usableFromInline let copyBuffers: UnsafeMutableRawPointer
    @usableFromInline let copyBufferSize = 65536 + 1024
    @usableFromInline let copyBufferCount = 8
    /// Fragments of reassembled IPv4 datagrams larger than the egress MTU (the fanout defrag
    /// flag hands them over whole): `fragmentSlots` slots of `fragmentSlotSize`, each a zero vnet
    /// header and one fragment, valid until the batch is flushed.
    @usableFromInline let fragmentBuffer: UnsafeMutableRawPointer
    @usableFromInline let fragmentLengths: UnsafeMutablePointer<Int>
    @usableFromInline let fragmentSlotSize: Int
    @usableFromInline let fragmentSlots = 96
    @usableFromInline var fragmentsUsed = 0
    /// The processor was told of receive offloads for the last frame (`ReceiveOffloads`).
    @usableFromInline var offloadsSet = false

    @usableFromInline static var vnet: Int { PacketSocket.vnetHeaderLength }

    public init(processor: P, sockets: [PacketSocket], batchSize: Int = 64, tickInterval: UInt64 = 100_000_000,
                spinNanoseconds: UInt64 = 0) {
        self.spinNs = spinNanoseconds
        precondition(!sockets.isEmpty && batchSize > 0)
        self.processor = processor
        self.sockets = sockets
        self.batchSize = batchSize
        self.tickInterval = max(1_000_000, min(tickInterval, 100_000_000))
        count = sockets.count
        counterBlock = CounterBlock(rows: sockets.count)
        stopFlag = AtomicWords(count: 1)
        pending = .allocate(capacity: batchSize)
        pending.initialize(repeating: nil, count: batchSize)
        copyBuffers = .allocate(byteCount: copyBufferSize * copyBufferCount, alignment: 64)
        let maxMTU = sockets.map(\.interface.mtu).max() ?? 1500
        fragmentSlotSize = (PacketSocket.vnetHeaderLength + 18 + maxMTU + 63) & ~63
        fragmentBuffer = .allocate(byteCount: fragmentSlotSize * fragmentSlots, alignment: 64)
        fragmentLengths = .allocate(capacity: fragmentSlots)
        pollfds = .allocate(capacity: sockets.count)
        state = .allocate(capacity: sockets.count)
        for (i, s) in sockets.enumerated() {
            pollfds[i] = pollfd(fd: s.fd, events: Int16(POLLIN), revents: 0)
            let msgs = UnsafeMutablePointer<clvs_mmsghdr>.allocate(capacity: batchSize)
            let iovs = UnsafeMutablePointer<iovec>.allocate(capacity: batchSize)
            iovs.initialize(repeating: iovec(iov_base: nil, iov_len: 0), count: batchSize)
            var addressLength: UInt32 = 0
            let sendAddress = s.protocolType == 3 ? nil : clvs_packet_send_address(s.interface.index, &addressLength)
            for m in 0..<batchSize {
                var h = clvs_mmsghdr()
                h.msg_hdr.msg_iov = iovs + m
                h.msg_hdr.msg_iovlen = 1
                if let sendAddress {
                    h.msg_hdr.msg_name = sendAddress
                    h.msg_hdr.msg_namelen = addressLength
                }
                (msgs + m).initialize(to: h)
            }
            (state + i).initialize(to: SocketState(
                fd: s.fd, ifindex: s.interface.index, ring: s.ring, frameSize: s.frameSize,
                frameCount: s.frameCount, head: 0, msgs: msgs, iovs: iovs, txCount: 0,
                counters: counterBlock.row(i), mtu: s.interface.mtu, sendAddress: sendAddress))
        }
    }

    deinit {
        for i in 0..<count {
            state[i].msgs.deallocate()
            state[i].iovs.deallocate()
            free(state[i].sendAddress)
        }
        state.deallocate()
        pollfds.deallocate()
        pending.deallocate()
        copyBuffers.deallocate()
        fragmentBuffer.deallocate()
        fragmentLengths.deallocate()
        stopFlag.deallocate()
    }

    /// Asks `run()` to return (within one tick interval). Safe from any thread.
    public func requestStop() { stopFlag.store(0, 1) }

    /// Hands back, unprocessed, the frames waiting in this worker's rings; for `DataPlane.start`,
    /// before the thread runs. Returns how many.
    public func discardReceived() -> Int {
        var discarded = 0
        for si in 0..<count {
            let s = state + si
            for _ in 0..<s.pointee.frameCount {
                let hdr = s.pointee.ring + s.pointee.head &* s.pointee.frameSize
                let status = clvs_tp2_status(hdr)
                if status & UInt32(TP_STATUS_USER) == 0 { break }
                if status & UInt32(TP_STATUS_COPY) != 0 { _ = recv(s.pointee.fd, copyBuffers, 0, Int32(MSG_DONTWAIT | MSG_TRUNC)) }
                s.pointee.head = s.pointee.head + 1 == s.pointee.frameCount ? 0 : s.pointee.head + 1
                clvs_tp2_release(hdr)
                discarded += 1
            }
        }
        return discarded
    }
    public var isStopRequested: Bool { stopFlag.load(0) != 0 }

    /// This worker's counters per interface index.
    public func counters() -> [Int32: InterfaceCounters] {
        var out: [Int32: InterfaceCounters] = [:]
        for (i, s) in sockets.enumerated() { out[s.interface.index, default: InterfaceCounters()] += counterBlock.snapshot(row: i) }
        return out
    }

    /// The loop. Returns once a stop was requested. Inlinable so it is specialised for the caller's
    /// processor type (static calls to `process`).
    @inlinable
    public func run() {
        var lastTick = clvs_now_ns()
        var lastWork = lastTick
        while stopFlag.load(0) == 0 {
            let now = clvs_now_ns()
            var got = 0
            for i in 0..<count { got += drain(i, now: now) }
            if got > 0 { processor.afterBatch(now: now); lastWork = now }
            var t = got == 0 ? now : clvs_now_ns()
            if got == 0 && t &- lastWork < spinNs {
                // Traffic just passed: check again soon instead of sleeping (a wake-up costs more).
                sched_yield()
                t = clvs_now_ns()
            } else if got == 0 {
                let untilTick = lastTick &+ tickInterval &- t
                let timeout = t &- lastTick >= tickInterval ? 0 : Int32(min(untilTick / 1_000_000 + 1, 100))
                if clvs_poll_in(pollfds, Int32(count), timeout) > 0 { clearErrors() }
                t = clvs_now_ns()
            }
            if t &- lastTick >= tickInterval {
                processor.tick(now: t)
                lastTick = t
            }
        }
    }

    /// A socket error (e.g. ENETDOWN) would make poll return at once forever: read it to clear it.
    @inlinable
    func clearErrors() {
        for i in 0..<count where pollfds[i].revents & Int16(POLLERR) != 0 {
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            _ = getsockopt(pollfds[i].fd, SOL_SOCKET, SO_ERROR, &err, &len)
        }
    }

    /// Processes up to `batchSize` ready frames of socket `si`, flushes transmissions, releases the slots.
    @inlinable @inline(__always)
    func drain(_ si: Int, now: UInt64) -> Int {
        let s = state + si
        let row = s.pointee.counters
        let vnet = Self.vnet
        var consumed = 0
        var copies = 0
        // Announce the ready frames that sit in the ring (copies are read later) to the processor.
        var ahead = s.pointee.head
        for _ in 0..<batchSize {
            let hdr = s.pointee.ring + ahead &* s.pointee.frameSize
            let status = clvs_tp2_status(hdr)
            if status & UInt32(TP_STATUS_USER) == 0 { break }
            if status & UInt32(TP_STATUS_COPY) == 0 && clvs_tp2_pkttype(hdr) != UInt8(PACKET_OUTGOING) {
                processor.prefetch(UnsafeRawBufferPointer(start: hdr + Int(clvs_tp2_mac(hdr)), count: Int(clvs_tp2_snaplen(hdr))))
            }
            ahead = ahead + 1 == s.pointee.frameCount ? 0 : ahead + 1
        }
        processor.prefetchDone()
        while consumed < batchSize {
            let hdr = s.pointee.ring + s.pointee.head &* s.pointee.frameSize
            let status = clvs_tp2_status(hdr)
            if status & UInt32(TP_STATUS_USER) == 0 { break }
            let isCopy = status & UInt32(TP_STATUS_COPY) != 0
            if isCopy && copies == copyBufferCount { break } // flush first, then continue
            s.pointee.head = s.pointee.head + 1 == s.pointee.frameCount ? 0 : s.pointee.head + 1
            pending[consumed] = hdr
            consumed += 1

            if clvs_tp2_pkttype(hdr) == UInt8(PACKET_OUTGOING) {
                if isCopy { _ = recv(s.pointee.fd, copyBuffers, 0, Int32(MSG_DONTWAIT | MSG_TRUNC)) }
                continue
            }
            var vnetHeader: UnsafeMutableRawPointer
            var length: Int
            if isCopy {
                let buffer = copyBuffers + copies * copyBufferSize
                copies += 1
                let n = recv(s.pointee.fd, buffer, copyBufferSize, Int32(MSG_DONTWAIT | MSG_TRUNC))
                if n < vnet + 14 || n > copyBufferSize {
                    bump(row, Counter.truncated.rawValue)
                    continue
                }
                vnetHeader = buffer
                length = n - vnet
            } else {
                let snap = Int(clvs_tp2_snaplen(hdr))
                if snap < Int(clvs_tp2_len(hdr)) {
                    bump(row, Counter.truncated.rawValue)
                    continue
                }
                vnetHeader = hdr + Int(clvs_tp2_mac(hdr)) - vnet
                length = snap
            }
            if status & UInt32(TP_STATUS_VLAN_VALID) != 0 {
                // The tag lives outside the frame; the processor would strip it. Leave it to the kernel.
                bump(row, Counter.vlanPassed.rawValue)
                continue
            }
            bump(row, Counter.rxPackets.rawValue)
            bump(row, Counter.rxBytes.rawValue, UInt64(length))
            let frame = UnsafeMutableRawBufferPointer(start: vnetHeader + vnet, count: length)
            // Tunnelled frames are copied, so what the kernel would complete on the way out must
            // be known (Transmit+TunnelPath.swift).
            if vnet > 0 && vnetHeader.load(as: UInt16.self) != 0 || offloadsSet {
                offloadsSet = vnet > 0 && vnetHeader.load(as: UInt16.self) != 0
                ReceiveOffloads.tell(processor, vnetHeader: vnetHeader, set: offloadsSet)
            }
            switch processor.process(frame, interface: s.pointee.ifindex, now: now) {
            case .pass:
                bump(row, Counter.passed.rawValue)
            case .drop(let reason):
                bump(row, Counter.dropped.rawValue)
                bump(row, Counter.reason(reason))
            case .forward(let egress):
                var target = -1
                for j in 0..<count where state[j].ifindex == egress { target = j; break }
                if target < 0 {
                    bump(row, Counter.unknownEgress.rawValue)
                } else if length > state[target].mtu + 14 && vnetHeader.load(fromByteOffset: 1, as: UInt8.self) == 0 {
                    // No GSO metadata: a datagram the kernel reassembled for the fanout. Send it
                    // in fragments, as the kernel does after IPVS (ip_fragment).
                    if !enqueueFragments(target, vnetHeader, frame) { bump(row, Counter.txErrors.rawValue) }
                } else {
                    enqueue(target, vnetHeader, vnet + length)
                }
            case .reply(let replyLength):
                if replyLength < 14 || replyLength > length {
                    bump(row, Counter.txErrors.rawValue)
                } else {
                    memset(vnetHeader, 0, vnet)
                    enqueue(si, vnetHeader, vnet + replyLength)
                }
            }
        }
        if consumed > 0 {
            for j in 0..<count where state[j].txCount > 0 { flush(j) }
            fragmentsUsed = 0
            for k in 0..<consumed {
                clvs_tp2_release(pending[k]!)
            }
        }
        return consumed
    }

    /// Completes a pending transport checksum, splits the IPv4 datagram into MTU-sized fragments
    /// and queues them; false when it cannot (DF set, not IPv4, no room in this batch).
    @inlinable
    func enqueueFragments(_ target: Int, _ vnetHeader: UnsafeMutableRawPointer, _ frame: UnsafeMutableRawBufferPointer) -> Bool {
        let vnet = Self.vnet
        let p = frame.baseAddress!
        var l3 = 14
        if frame.count > 18 && UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt16.self)) == FrameParser.etherTypeVLAN { l3 = 18 }
        guard frame.count > l3 + 20, UInt16(bigEndian: p.loadUnaligned(fromByteOffset: l3 - 2, as: UInt16.self)) == FrameParser.etherTypeIPv4 else {
            return false
        }
        if vnetHeader.load(as: UInt8.self) & 1 != 0 { // VIRTIO_NET_HDR_F_NEEDS_CSUM
            let start = Int(UInt16(littleEndian: vnetHeader.loadUnaligned(fromByteOffset: 6, as: UInt16.self)))
            let offset = Int(UInt16(littleEndian: vnetHeader.loadUnaligned(fromByteOffset: 8, as: UInt16.self)))
            FrameRewriter.completeChecksum(frame, start: start, offset: offset, udp: p.load(fromByteOffset: l3 + 9, as: UInt8.self) == 17)
        }
        let free = fragmentSlots - fragmentsUsed
        let first = fragmentBuffer + fragmentsUsed * fragmentSlotSize
        let n = FrameRewriter.fragmentIPv4(UnsafeRawBufferPointer(frame), l3Offset: l3, mtu: state[target].mtu, output: first + vnet,
                                           slotSize: fragmentSlotSize, maxFragments: min(free, batchSize),
                                           lengths: fragmentLengths)
        guard n > 0 else { return false }
        for k in 0..<n {
            let slot = first + k * fragmentSlotSize
            memset(slot, 0, vnet)
            enqueue(target, slot, vnet + fragmentLengths[k])
        }
        fragmentsUsed += n
        return true
    }

    @inlinable @inline(__always)
    func enqueue(_ target: Int, _ start: UnsafeMutableRawPointer, _ bytes: Int) {
        let t = state + target
        if t.pointee.txCount == batchSize { flush(target) } // fragments can outnumber the frames of a batch
        let n = t.pointee.txCount
        t.pointee.iovs[n].iov_base = start
        t.pointee.iovs[n].iov_len = bytes
        t.pointee.txCount = n + 1
    }

    @inlinable
    func flush(_ target: Int) {
        let t = state + target
        let total = t.pointee.txCount
        let row = t.pointee.counters
        var sent = 0
        while sent < total {
            let r = clvs_sendmmsg(t.pointee.fd, t.pointee.msgs + sent, UInt32(total - sent), Int32(MSG_DONTWAIT))
            if r > 0 {
                var bytes = 0
                for m in sent..<(sent + Int(r)) { bytes += t.pointee.iovs[m].iov_len - Self.vnet }
                bump(row, Counter.txPackets.rawValue, UInt64(r))
                bump(row, Counter.txBytes.rawValue, UInt64(bytes))
                sent += Int(r)
            } else {
                if r < 0 && errno == EINTR { continue }
                bump(row, Counter.txErrors.rawValue)
                sent += 1 // the message at `sent` failed; skip it
            }
        }
        t.pointee.txCount = 0
    }
}
