import Glibc

/// The packet path (the kernel's ip_vs_core.c): a frame in, a verdict out; the path of an
/// existing connection, its TCP state transitions, ICMP errors for a connection.
extension EngineShard {
    // MARK: Packet path

    /// Decides what to do with one Ethernet frame received on `interface` at time `now` (ns,
    /// monotonic), rewriting it in place when it is forwarded or answered.
    public func process(_ frame: UnsafeMutableRawBufferPointer, interface: Int32, now: UInt64) -> Verdict {
        var f = ParsedFrame()
        FrameParser.parse(UnsafeRawBufferPointer(frame), into: &f)
        let tick = Engine.tick(now)
        currentTick = tick
        ingressInterface = interface
        switch f.kind {
        case .ipv4, .ipv6:
            break
        case .arp:
            let v = engine.lock.withLock { engine.handleARP(frame, f, interface: interface) }
            return count(v)
        case .malformed:
            return drop(.malformed)
        case .other:
            return passed()
        }
        if f.isLaterFragment {
            guard onEngine({ $0.mayBeVirtual(f.destination) }) else { return passed() }
            guard let destWord = fragments.find(f, now: tick) else {
                return engine.lock.withLock { engine.vips.contains(f.destination) } ? drop(.fragment) : passed()
            }
            if notOwned(f.destination) { return dropNotOwned() }
            // The first fragment's destination and method (`ConnectionEntry.destWord`).
            let slot = destWord & ConnectionEntry.destMask
            return transmit(frame, f, destSlot: slot, word: forwarding.load(Int(slot)),
                            method: ConnectionEntry.method(ofDestWord: destWord))
        }
        if f.hasPorts {
            let key = ConnectionKey(proto: f.proto, client: f.source, clientPort: f.sourcePort,
                                    virtualAddress: f.destination, virtualPort: f.destinationPort)
            let bucket = prefetchedBucket(frame, f)
                ?? conns.bucket(proto: f.proto, client: f.source, cport: f.sourcePort, vlow: f.destination.words.3, vport: f.destinationPort)
            if let index = conns.lookup(key, template: false, bucket: bucket) {
                // A VIP given up (VRRP BACKUP): the entry stays, for a takeover.
                if notOwned(f.destination) { return dropNotOwned() }
                if let verdict = existing(frame, f, index: index, tick: tick) { return verdict }
            } else if engine.natConnections != 0, let verdict = natReply(frame, f, tick: tick, bucket: bucket) {
                return verdict
            }
            guard onEngine({ $0.mayBeVirtual(f.destination) }) else { return passed() }
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            return newConnection(frame, f, key: key, tick: tick, now: now)
        }
        if f.isICMPError { return icmpError(frame, f) }
        if f.kind == .ipv6 && f.proto == 58 && (f.icmpType == 135 || f.icmpType == 136) {
            let v = engine.lock.withLock { engine.handleNeighbourDiscovery(frame, f, interface: interface) }
            return count(v)
        }
        return passed()
    }

    @inline(__always) func count(_ v: Verdict) -> Verdict {
        switch v {
        case .pass: counters.bump(ShardCounter.passed.rawValue, by: 1)
        case .reply: counters.bump(ShardCounter.replies.rawValue, by: 1)
        case let .drop(r): counters.bump(ShardCounter.drop(r), by: 1)
        case .forward: counters.bump(ShardCounter.forwarded.rawValue, by: 1)
        }
        return v
    }

    @inline(__always) func passed() -> Verdict {
        counters.bump(ShardCounter.passed.rawValue, by: 1)
        return .pass
    }

    @inline(__always) func drop(_ r: DropReason) -> Verdict {
        counters.bump(ShardCounter.drop(r), by: 1)
        return .drop(r)
    }

    /// A packet of an existing connection; nil when it must be treated as new. One function out
    /// of line per method, each with its method a constant, chosen by the connection's
    /// `destWord` here: DR's is taken after one test, so it pays nothing for the other methods.
    @inline(__always) func existing(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, index: UInt32, tick: UInt32) -> Verdict? {
        let destWord = conns[index].destWord
        if destWord > ConnectionEntry.destMask {
            if destWord >> ConnectionEntry.methodShift == ConnectionMethod.tunnel.rawValue {
                return existingTunnel(frame, f, index: index, slot: destWord & ConnectionEntry.destMask, tick: tick)
            }
            return existingNAT(frame, f, index: index, slot: destWord & ConnectionEntry.destMask, tick: tick)
        }
        // DR: the word is the slot.
        return existingDR(frame, f, index: index, slot: destWord, tick: tick)
    }

    /// `existing` for a DR connection.
    @inline(never)
    func existingDR(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, index: UInt32, slot: UInt32, tick: UInt32) -> Verdict? {
        existing(frame, f, index: index, slot: slot, word: forwarding.load(Int(slot)), method: .directRoute, tick: tick)
    }

    /// `existing` for a tunnel connection.
    @inline(never)
    func existingTunnel(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, index: UInt32, slot: UInt32, tick: UInt32) -> Verdict? {
        existing(frame, f, index: index, slot: slot, word: forwarding.load(Int(slot)), method: .tunnel, tick: tick)
    }

    /// `existing` for a NAT connection.
    @inline(never)
    func existingNAT(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, index: UInt32, slot: UInt32, tick: UInt32) -> Verdict? {
        existing(frame, f, index: index, slot: slot, word: forwarding.load(Int(slot)), method: .masquerade, tick: tick)
    }

    /// A packet of an existing connection of destination `slot` (forwarding word `word`) sent by `method`.
    @inline(__always) func existing(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, index: UInt32, slot: UInt32, word: UInt64,
                                    method: ConnectionMethod, tick: UInt32) -> Verdict? {
        // The kernel's order (ip_vs_in_hook): first a new SYN that may start afresh, then the
        // destination's availability.
        if f.proto == 6 && f.tcpFlags & TCPFlag.syn != 0
            && reschedulesSYN(state: conns[index].state, controlled: conns[index].control != 0, word: word) {
            engine.lock.withLock { kill(index) }
            return nil
        }
        if word & Engine.flagAvailable == 0 {
            if engine.expireNodestConn {
                engine.lock.withLock { kill(index) }
                return nil
            }
            return drop(.destinationUnavailable)
        }
        var changed = false
        var offloadable = f.proto == 17
        if f.proto == 6 {
            let state = conns[index].state
            let next: UInt8
            if let event = TCPStateTable.event(flags: f.tcpFlags) {
                next = transitions[TCPStateTable.index(event: event, state: state) &+ TCPStateTable.inputBlock(method)]
            } else {
                next = TCPState.close.rawValue
            }
            if next != state {
                setState(index, TCPState(rawValue: next)!)
                changed = true
            }
            if offloadEnabled {
                let established = TCPState.established.rawValue
                if f.tcpFlags & (TCPFlag.syn | TCPFlag.fin | TCPFlag.rst) == 0 {
                    offloadable = next == established
                } else if state == established {
                    // FIN/RST: the fast path (which never sees them) must let go of it now.
                    recordOffload(f, index: index, destSlot: slot, remove: true)
                }
            }
            let old = conns[index].expires
            conns[index].expires = tick &+ UInt32(truncatingIfNeeded: timeoutTicks.load(Int(next)))
            if Int32(bitPattern: conns[index].expires &- old) < 0 { conns.reschedule(index) }
        } else if f.proto == 17 {
            conns[index].expires = tick &+ UInt32(truncatingIfNeeded: timeoutTicks.load(Engine.udpTimeoutIndex))
        } else {
            conns[index].expires = tick &+ UInt32(truncatingIfNeeded: timeoutTicks.load(Engine.sctpTimeoutIndex))
        }
        var pkts = conns[index].inPackets &+ 1
        if pkts == ConnectionEntry.packetCounterWrap { pkts = 0 }
        conns[index].inPackets = pkts
        if syncFlag.load(0) != 0 { syncAfterPacket(index, pkts: pkts, stateChanged: changed) }
        let verdict = transmit(frame, f, destSlot: slot, word: word, method: method)
        if offloadEnabled && offloadable && pkts >= offloadAfterPackets && !f.isFirstFragment, case .forward = verdict {
            recordOffload(f, index: index, destSlot: slot, remove: false)
        }
        return verdict
    }

    /// Whether a TCP SYN (the kernel's `is_new_conn`: the SYN bit, whatever else is set) that matches
    /// an existing entry ends it and is scheduled afresh: with expire_nodest_conn when the entry's
    /// destination has weight 0, or by conn_reuse_mode when an uncontrolled entry is closing.
    @inline(__always) func reschedulesSYN(state: UInt8, controlled: Bool, word: UInt64) -> Bool {
        if engine.expireNodestConn && word & Engine.flagWeightZero != 0 { return true }
        return !controlled && reusable(state)
    }

    @inline(__always) func reusable(_ state: UInt8) -> Bool {
        let mode = engine.connReuseMode
        guard mode & 1 != 0 else { return false }
        if state == TCPState.timeWait.rawValue || state == TCPState.close.rawValue { return true }
        return mode & 2 != 0 && state == TCPState.finWait.rawValue
    }

    /// Moves a TCP entry to `next`, keeping the destination's active/inactive counts right.
    @inline(__always) func setState(_ index: UInt32, _ next: TCPState) {
        let wasInactive = conns[index].isInactive
        let slot = conns[index].dest
        if wasInactive && next.isActive {
            conns[index].stateFlags &= ~ConnectionEntry.flagInactive
            destCounts.moveConnection(slot, from: .inactive, to: .active)
        } else if !wasInactive && !next.isActive {
            conns[index].stateFlags |= ConnectionEntry.flagInactive
            destCounts.moveConnection(slot, from: .active, to: .inactive)
        }
        conns[index].state = next.rawValue
        if next == .established {
            let c = conns[index].control
            if c != 0 { engine.lock.withLock { engine.templates[c - 1].stateFlags |= ConnectionEntry.flagAssured } }
        }
    }

    func icmpError(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame) -> Verdict {
        // The embedded packet went from the VIP to the client: look up the reverse direction.
        let key = ConnectionKey(proto: f.innerProto, client: f.innerDestination, clientPort: f.innerDestinationPort,
                                virtualAddress: f.innerSource, virtualPort: f.innerSourcePort)
        guard f.destination == f.innerSource, let index = conns.lookup(key, template: false) else {
            return natICMPFromServer(frame, f) ?? passed()
        }
        if notOwned(f.destination) { return dropNotOwned() }
        let slot = conns[index].dest
        let word = forwarding.load(Int(slot))
        guard word & Engine.flagAvailable != 0 else { return drop(.destinationUnavailable) }
        return transmit(frame, f, destSlot: slot, word: word, method: conns[index].method)
    }
}
