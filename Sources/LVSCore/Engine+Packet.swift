#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Maps non-first fragments to the destination chosen for their first fragment.
///
/// Direct-mapped, fixed size: a collision replaces the older entry (its later fragments are then
/// dropped, counted as `fragment`).
@usableFromInline struct FragmentCache {
    struct Entry {
        var source: IPAddress
        var destination: IPAddress
        var id: UInt32
        var proto: UInt8
        var destSlot: UInt32
        var expires: UInt32
    }
    static let size = 1024
    let entries: UnsafeMutablePointer<Entry>

    init() {
        entries = .allocate(capacity: Self.size)
        entries.initialize(repeating: Entry(source: .zero, destination: .zero, id: 0, proto: 0, destSlot: 0, expires: 0), count: Self.size)
    }
    func deallocate() { entries.deallocate() }

    @inline(__always) func index(_ f: ParsedFrame) -> Int {
        var h = UInt32(truncatingIfNeeded: f.source.low) &* 0x9E37_79B1
        h ^= f.fragmentID &* 0x85EB_CA6B
        h ^= UInt32(truncatingIfNeeded: f.destination.low)
        return Int((h ^ (h >> 15)) % UInt32(Self.size))
    }

    func remember(_ f: ParsedFrame, destSlot: UInt32, now: UInt32) {
        entries[index(f)] = Entry(source: f.source, destination: f.destination, id: f.fragmentID, proto: f.proto,
                                  destSlot: destSlot, expires: now &+ 30 * Engine.ticksPerSecond)
    }

    func find(_ f: ParsedFrame, now: UInt32) -> UInt32? {
        let e = entries[index(f)]
        guard e.id == f.fragmentID, e.proto == f.proto, e.source == f.source, e.destination == f.destination,
              Int32(bitPattern: e.expires &- now) > 0 else { return nil }
        return e.destSlot
    }
}

extension Engine {
    // MARK: Packet path

    /// Decides what to do with one Ethernet frame received on `interface` at time `now` (ns,
    /// monotonic), rewriting it in place when it is forwarded or answered.
    ///
    /// No allocation, no locks and no reference counting on the path of an existing connection.
    public func process(_ frame: UnsafeMutableRawBufferPointer, interface: Int32, now: UInt64) -> Verdict {
        var f = ParsedFrame()
        FrameParser.parse(UnsafeRawBufferPointer(frame), into: &f)
        let tick = Self.tick(now)
        currentTick = tick
        switch f.kind {
        case .ipv4, .ipv6:
            break
        case .arp:
            return handleARP(frame, f, interface: interface)
        case .malformed:
            return drop(.malformed)
        case .other:
            counters.passed &+= 1
            return .pass
        }
        if f.isLaterFragment {
            // Only fragments for a VIP concern us; others go to the kernel.
            guard vips.contains(f.destination) || !markRules.isEmpty else { return passed() }
            guard let slot = fragments.find(f, now: tick) else {
                return vips.contains(f.destination) ? drop(.fragment) : passed()
            }
            return transmit(frame, f, destSlot: slot)
        }
        if f.hasPorts {
            let key = ConnectionKey(proto: f.proto, client: f.source, clientPort: f.sourcePort,
                                    virtualAddress: f.destination, virtualPort: f.destinationPort)
            if let index = table.lookup(key, template: false) {
                if let verdict = existing(frame, f, index: index, tick: tick) { return verdict }
            }
            return newConnection(frame, f, key: key, tick: tick, now: now)
        }
        if f.isICMPError { return icmpError(frame, f) }
        if f.kind == .ipv6 && f.proto == 58 && (f.icmpType == 135 || f.icmpType == 136) {
            return handleNeighbourDiscovery(frame, f, interface: interface)
        }
        return passed()
    }

    @inline(__always) func passed() -> Verdict {
        counters.passed &+= 1
        return .pass
    }

    @inline(__always) func drop(_ r: DropReason) -> Verdict {
        counters.drops[Int(r.rawValue)] &+= 1
        return .drop(r)
    }

    /// Counts, rewrites and forwards a frame to a destination.
    @inline(__always) func transmit(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, destSlot: UInt32) -> Verdict {
        let d = dests + Int(destSlot)
        guard d.pointee.macKnown else { return drop(.neighbourUnresolved) }
        guard FrameRewriter.directRoute(frame, l3Offset: f.l3Offset, ipv6: f.kind == .ipv6,
                                        destinationMAC: d.pointee.mac, sourceMAC: d.pointee.sourceMAC) else {
            return drop(.ttlExceeded)
        }
        let bytes = UInt64(f.ipLength)
        destStats[Int(destSlot)].inPackets &+= 1
        destStats[Int(destSlot)].inBytes &+= bytes
        let svc = d.pointee.serviceSlot
        if svc != UInt32.max {
            serviceStats[Int(svc)].inPackets &+= 1
            serviceStats[Int(svc)].inBytes &+= bytes
        }
        counters.forwarded &+= 1
        if f.isFirstFragment { fragments.remember(f, destSlot: destSlot, now: currentTick) }
        return .forward(interface: d.pointee.interface)
    }

    /// A packet of an existing connection; nil when it must be treated as new.
    @inline(__always) func existing(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, index: UInt32, tick: UInt32) -> Verdict? {
        let slot = table[index].dest
        if !dests[Int(slot)].available {
            if configuration.expireNodestConn {
                kill(index)
                return nil
            }
            return drop(.destinationUnavailable)
        }
        if f.proto == 6 {
            let state = table[index].state
            if f.tcpFlags & TCPFlag.syn != 0 && f.tcpFlags & TCPFlag.rst == 0 && table[index].control == 0 && reusable(state) {
                // conn_reuse_mode: a new SYN on a closing entry is scheduled afresh.
                kill(index)
                return nil
            }
            let next = TCPStateTable.next(TCPState(rawValue: state) ?? .none, flags: f.tcpFlags)
            setState(index, next)
            let old = table[index].expires
            table[index].expires = tick &+ timeoutTicks[Int(next.rawValue)]
            if Int32(bitPattern: table[index].expires &- old) < 0 { table.reschedule(index) }
        } else if f.proto == 17 {
            table[index].expires = tick &+ timeoutTicks[Self.udpTimeoutIndex]
        } else {
            table[index].expires = tick &+ timeoutTicks[Self.sctpTimeoutIndex]
        }
        return transmit(frame, f, destSlot: slot)
    }

    @inline(__always) func reusable(_ state: UInt8) -> Bool {
        guard configuration.connReuseMode & 1 != 0 else { return false }
        if state == TCPState.timeWait.rawValue || state == TCPState.close.rawValue { return true }
        return configuration.connReuseMode & 2 != 0 && state == TCPState.finWait.rawValue
    }

    /// Moves a TCP entry to `next`, keeping the destination's active/inactive counts right.
    @inline(__always) func setState(_ index: UInt32, _ next: TCPState) {
        let wasInactive = table[index].isInactive
        let slot = Int(table[index].dest)
        if wasInactive && next.isActive {
            table[index].stateFlags &= ~ConnectionEntry.flagInactive
            dests[slot].inactConns -= 1
            dests[slot].activeConns += 1
        } else if !wasInactive && !next.isActive {
            table[index].stateFlags |= ConnectionEntry.flagInactive
            dests[slot].activeConns -= 1
            dests[slot].inactConns += 1
        }
        table[index].state = next.rawValue
        if next == .established {
            let c = table[index].control
            if c != 0 { table[c - 1].stateFlags |= ConnectionEntry.flagAssured }
        }
    }

    func icmpError(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame) -> Verdict {
        // The embedded packet went from the VIP to the client: look up the reverse direction.
        let key = ConnectionKey(proto: f.innerProto, client: f.innerDestination, clientPort: f.innerDestinationPort,
                                virtualAddress: f.innerSource, virtualPort: f.innerSourcePort)
        guard f.destination == f.innerSource, let index = table.lookup(key, template: false) else { return passed() }
        let slot = table[index].dest
        guard dests[Int(slot)].available else { return drop(.destinationUnavailable) }
        return transmit(frame, f, destSlot: slot)
    }

    // MARK: New connections

    func findService(_ f: ParsedFrame) -> Int? {
        if !markRules.isEmpty {
            for rule in markRules where rule.matches(f) {
                if let s = serviceIndex[ServiceKey(fwmark: rule.mark, ipv6: f.kind == .ipv6)] { return s }
            }
        }
        guard let proto = IPProtocolNumber(rawValue: f.proto) else { return nil }
        if let s = serviceIndex[ServiceKey(proto: proto, address: f.destination, port: f.destinationPort)] { return s }
        if let s = serviceIndex[ServiceKey(proto: proto, address: f.destination, port: 0)],
           services[s]!.options.flags.contains(.persistent) { return s }
        return nil
    }

    func newConnection(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, key: ConnectionKey, tick: UInt32, now: UInt64) -> Verdict {
        guard let s = findService(f) else { return passed() }
        // Read what is needed without copying the record (a copy would make the scheduler's storage shared).
        let serviceKey = services[s]!.key
        let serviceFlags = services[s]!.options.flags
        // Which packets may open a connection.
        switch f.proto {
        case 6:
            let syn = f.tcpFlags & TCPFlag.syn != 0 && f.tcpFlags & TCPFlag.rst == 0
            guard syn || (configuration.sloppyTCP && f.tcpFlags & TCPFlag.rst == 0) else { return passed() }
        case 132:
            guard f.sctpInit else { return passed() }
        default:
            break
        }
        if f.sourcePort == 20 && f.proto == 6 { return passed() } // FTP data is never scheduled
        let persistent = serviceFlags.contains(.persistent)
        if !persistent && !serviceKey.isFwmark && f.destinationPort != serviceKey.port { return drop(.notSchedulable) }

        var control: UInt32 = 0
        let slot: UInt32
        if persistent {
            guard let (t, d) = persistentDestination(s, f, tick: tick) else {
                return drop(table.count >= table.capacity ? .tableFull : .noDestination)
            }
            control = t + 1
            slot = d
        } else {
            guard let d = runScheduler(s, f, now: now) else { return drop(.noDestination) }
            slot = d
        }
        let dest = dests[Int(slot)]
        let dport = f.destinationPort == serviceKey.port && dest.port != 0 ? dest.port : f.destinationPort
        if serviceFlags.contains(.onePacket) && f.proto == 17 {
            // One-packet scheduling: no entry, the packet is forwarded on its own.
            countNewConnection(slot)
            return transmit(frame, f, destSlot: slot)
        }
        let initialTimeout = f.proto == 17 ? timeoutTicks[Self.udpTimeoutIndex] : timeoutTicks[0]
        guard let index = table.insert(key, dest: slot, dport: dport, stateFlags: ConnectionEntry.flagInactive,
                                       control: control, expires: tick &+ initialTimeout) else {
            return drop(.tableFull)
        }
        if control != 0 { table[control - 1].control += 1 }
        dests[Int(slot)].inactConns += 1
        countNewConnection(slot)
        checkOverload(slot)
        if f.proto == 6 {
            let next = TCPStateTable.next(.none, flags: f.tcpFlags)
            setState(index, next)
            table[index].expires = tick &+ timeoutTicks[Int(next.rawValue)]
            table.reschedule(index)
        } else if f.proto == 132 {
            table[index].state = TCPState.established.rawValue
            table[index].expires = tick &+ timeoutTicks[Self.sctpTimeoutIndex]
        }
        return transmit(frame, f, destSlot: slot)
    }

    func countNewConnection(_ slot: UInt32) {
        counters.newConnections &+= 1
        destStats[Int(slot)].conns &+= 1
        let svc = dests[Int(slot)].serviceSlot
        if svc != UInt32.max { serviceStats[Int(svc)].conns &+= 1 }
    }

    func checkOverload(_ slot: UInt32) {
        let d = dests[Int(slot)]
        if d.upperThreshold != 0 && UInt32(max(0, d.totalConns)) >= d.upperThreshold { dests[Int(slot)].overloaded = true }
    }

    func runScheduler(_ s: Int, _ f: ParsedFrame, now: UInt64) -> UInt32? {
        let order = services[s]!.destinations
        var ctx = SchedulingContext(source: f.source, sourcePort: f.sourcePort, destination: f.destination,
                                    flags: services[s]!.options.flags, nowSeconds: UInt32(truncatingIfNeeded: now / 1_000_000_000),
                                    randomState: randomState)
        let picked = order.withUnsafeBufferPointer { buf in
            services[s]!.scheduler.schedule(SchedulingDestinations(order: buf, table: dests), &ctx)
        }
        randomState = ctx.randomState
        guard let i = picked, i >= 0, i < order.count else { return nil }
        return order[i]
    }

    /// Finds or creates the persistence template; returns (template index, destination slot).
    func persistentDestination(_ s: Int, _ f: ParsedFrame, tick: UInt32) -> (UInt32, UInt32)? {
        let svc = (key: services[s]!.key, options: services[s]!.options)
        let snet = f.source.isIPv4 ? f.source.masked(ipv4Mask: svc.options.netmask) : f.source.masked(prefix: Int(svc.options.netmask))
        let tkey: ConnectionKey
        if svc.key.isFwmark {
            tkey = ConnectionKey(proto: 0, client: snet, clientPort: 0, virtualAddress: IPAddress(ipv4: svc.key.fwmark), virtualPort: 0)
        } else if svc.key.port == 0 {
            tkey = ConnectionKey(proto: f.proto, client: snet, clientPort: 0, virtualAddress: f.destination, virtualPort: 0)
        } else {
            tkey = ConnectionKey(proto: f.proto, client: snet, clientPort: 0, virtualAddress: f.destination, virtualPort: f.destinationPort)
        }
        let persistTicks = svc.options.timeout &* Self.ticksPerSecond
        if let t = table.lookup(tkey, template: true) {
            let slot = table[t].dest
            let d = dests[Int(slot)]
            if d.available && !(configuration.expireQuiescentTemplate && d.weight == 0) {
                table[t].expires = tick &+ persistTicks
                return (t, slot)
            }
            kill(t) // invalidated: no longer matches, freed once its connections are gone
        }
        guard let slot = runScheduler(s, f, now: UInt64(tick) * Self.nanosecondsPerTick) else { return nil }
        let dport: UInt16 = (!svc.key.isFwmark && svc.key.port != 0) ? dests[Int(slot)].port : 0
        guard let t = table.insert(tkey, dest: slot, dport: dport, stateFlags: ConnectionEntry.flagTemplate,
                                   control: 0, expires: tick &+ persistTicks) else { return nil }
        dests[Int(slot)].persistConns += 1
        return (t, slot)
    }

    // MARK: Expiry

    /// Unbinds an entry from its destination and unhashes it; the wheel frees it later.
    func kill(_ index: UInt32) {
        guard !table[index].isDead else { return }
        unbind(index)
        table.unhash(index)
        // Freed at the next wheel pass.
        table[index].expires = currentTick
        table.reschedule(index)
    }

    func unbind(_ index: UInt32) {
        let e = table[index]
        let slot = Int(e.dest)
        if e.isTemplate {
            dests[slot].persistConns -= 1
        } else {
            if e.isInactive { dests[slot].inactConns -= 1 } else { dests[slot].activeConns -= 1 }
            if e.control != 0 { table[e.control - 1].control -= 1 }
            clearOverload(UInt32(slot))
        }
        if !dests[slot].available && destReferences(UInt32(slot)) == 0 { releaseDestSlot(UInt32(slot)) }
    }

    func clearOverload(_ slot: UInt32) {
        let d = dests[Int(slot)]
        guard d.overloaded else { return }
        let total = UInt32(max(0, d.totalConns))
        if d.lowerThreshold != 0 {
            if total < d.lowerThreshold { dests[Int(slot)].overloaded = false }
        } else if d.upperThreshold != 0 {
            if UInt64(total) * 4 < UInt64(d.upperThreshold) * 3 { dests[Int(slot)].overloaded = false }
        } else {
            dests[Int(slot)].overloaded = false
        }
    }

    /// Timers: connection expiry, the 2-second rate estimator, scheduler housekeeping.
    /// Call at least every 100 ms; cheap when nothing is due.
    public func tick(now: UInt64) {
        let t = Self.tick(now)
        let rearm = 60 * Self.ticksPerSecond
        table.advance(to: t) { index in
            let e = table[index]
            if e.isTemplate && e.control > 0 {
                table[index].expires = t &+ rearm
                return .keep
            }
            if !e.isDead { unbind(index) }
            return .free
        }
        if t &- lastEstimateTick >= 2 * Self.ticksPerSecond {
            lastEstimateTick = t
            estimate()
        }
        if t &- lastHousekeepingTick >= 60 * Self.ticksPerSecond {
            lastHousekeepingTick = t
            let secs = UInt32(truncatingIfNeeded: now / 1_000_000_000)
            for s in services.indices where services[s] != nil { services[s]!.scheduler.expire(nowSeconds: secs) }
        }
    }

    func estimate() {
        for s in services.indices where services[s] != nil {
            services[s]!.estimator.sample(serviceStats[s])
            for d in services[s]!.destinations + services[s]!.trash { destEstimators[Int(d)].sample(destStats[Int(d)]) }
        }
    }
}
