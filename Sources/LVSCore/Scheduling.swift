import LVSModel

/// New connections (the kernel's ip_vs_sched.c and ip_vs_conn_new): service lookup, scheduling,
/// persistence templates and the new entry. Under the engine lock.
extension EngineShard {
    // MARK: New connections (under the engine lock)

    func newConnection(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame, key: ConnectionKey, tick: UInt32, now: UInt64) -> Verdict {
        if !engine.notOwnedAddresses.isEmpty && engine.notOwnedAddresses.contains(f.destination) {
            // A VIP given up (VRRP BACKUP): nothing is scheduled or adopted; other addresses pass.
            return onEngine { $0.findService(f) } != nil ? dropNotOwned() : passed()
        }
        if engine.synced.count > 0, let v = adoptSynced(frame, f, key: key, tick: tick) { return v }
        guard let s = onEngine({ $0.findService(f) }) else { return passed() }
        let serviceKey = serviceInfo[s].key
        let serviceFlags = serviceInfo[s].flags
        switch f.proto {
        case 6:
            let syn = f.tcpFlags & TCPFlag.syn != 0 && f.tcpFlags & TCPFlag.rst == 0
            guard syn || (engine.sloppyTCP && f.tcpFlags & TCPFlag.rst == 0) else {
                if f.tcpFlags & (TCPFlag.fin | TCPFlag.rst) != 0 { recordStaleCandidate(key) }
                return passed()
            }
        case 132:
            guard f.sctpInit || (engine.sloppySCTP && !Self.isSCTPAbort(frame, f)) else { return passed() }
        default:
            break
        }
        if f.sourcePort == 20 && f.proto == 6 { return passed() } // FTP data is never scheduled
        let persistent = serviceFlags.contains(.persistent)
        if !persistent && !serviceKey.isFwmark && f.destinationPort != serviceKey.port { return drop(.notSchedulable) }
        // SYN-flood defence, before anything is scheduled: drop_packet sheds new connections;
        // drop_entry makes room in a full table by evicting a half-open or finished TCP entry.
        if dropPacketDecision() { return drop(.dropPacket) }
        if table.count >= table.capacity && defenseEngaged(engine.dropEntryMode) && !evictForNewConnection() {
            return drop(.tableFull)
        }

        var control: UInt32 = 0
        let slot: UInt32
        if persistent {
            guard let (t, d) = onEngine({ $0.persistentDestination(s, f, tick: tick) }) else {
                if engine.templates.count >= engine.templates.capacity { return drop(.tableFull) }
                sendPortUnreachable(frame, f, interface: ingressInterface)
                return drop(.noDestination)
            }
            control = t + 1
            slot = d
        } else {
            guard let d = onEngine({ $0.runScheduler(s, f, now: now) }) else {
                sendPortUnreachable(frame, f, interface: ingressInterface)
                return drop(.noDestination)
            }
            slot = d
        }
        if serviceFlags.contains(.onePacket) && f.proto == 17 {
            // One-packet scheduling: no entry, the packet is forwarded on its own.
            countNewConnection(slot)
            return transmitNew(frame, f, destSlot: slot)
        }
        let initialTimeout = UInt32(truncatingIfNeeded: timeoutTicks.load(f.proto == 17 ? Engine.udpTimeoutIndex : Int(TCPState.none.rawValue)))
        let method = ConnectionMethod(forwarding: forwarding.load(Int(slot)))
        guard let index = table.insert(key, dest: slot, method: method, stateFlags: ConnectionEntry.flagInactive,
                                       control: control, expires: tick &+ initialTimeout, inPackets: 1) else {
            return drop(.tableFull)
        }
        recordStaleCandidate(key)
        if control != 0 { engine.templates[control - 1].control += 1 }
        if method == .masquerade { linkReply(index, frame, f, destSlot: slot) }
        destCounts.add(DestCount.index(slot, .inactive), 1)
        countNewConnection(slot)
        onEngine { $0.checkOverload(slot) }
        if f.proto == 6 {
            let next = TCPStateTable.next(.none, flags: f.tcpFlags)
            setStateLocked(index, next)
            var timeout = UInt32(truncatingIfNeeded: timeoutTicks.load(Int(next.rawValue)))
            if next == .synRecv && defenseEngaged(engine.secureTCPMode) {
                // secure_tcp: a half-open entry under pressure lives only briefly.
                timeout = min(timeout, engine.configuration.defense.secureSynRecvTimeout &* Engine.ticksPerSecond)
                counters.bump(ShardCounter.secureTCPShortened.rawValue, by: 1)
            }
            table[index].expires = tick &+ timeout
            table.reschedule(index)
        } else if f.proto == 132 {
            table[index].state = TCPState.established.rawValue
            table[index].expires = tick &+ UInt32(truncatingIfNeeded: timeoutTicks.load(Engine.sctpTimeoutIndex))
            table.reschedule(index)
        }
        if syncFlag.load(0) != 0 { syncAfterPacket(index, pkts: 1, stateChanged: true) }
        return transmitNew(frame, f, destSlot: slot)
    }

    /// `setState` for callers already holding the lock (templates are shared).
    func setStateLocked(_ index: UInt32, _ next: TCPState) {
        let wasInactive = table[index].isInactive
        let slot = table[index].dest
        if wasInactive && next.isActive {
            table[index].stateFlags &= ~ConnectionEntry.flagInactive
            destCounts.moveConnection(slot, from: .inactive, to: .active)
        }
        table[index].state = next.rawValue
        if next == .established, table[index].control != 0 {
            engine.templates[table[index].control - 1].stateFlags |= ConnectionEntry.flagAssured
        }
    }

    func countNewConnection(_ slot: UInt32) {
        counters.bump(ShardCounter.newConnections.rawValue, by: 1)
        destCounters.bump(StatsWord.index(Int(slot), .conns), by: 1)
        let svc = destService.load(Int(slot))
        if svc != Engine.noService { serviceCounters.bump(StatsWord.index(Int(svc), .conns), by: 1) }
    }
}

extension Engine {
    func findService(_ f: ParsedFrame) -> Int? {
        if !markRules.isEmpty {
            for rule in markRules where rule.matches(f) {
                if let s = serviceLookup.find(ServiceKey(fwmark: rule.mark, ipv6: f.kind == .ipv6)) { return s }
            }
        }
        guard let proto = IPProtocolNumber(rawValue: f.proto) else { return nil }
        if let s = serviceLookup.find(ServiceKey(proto: proto, address: f.destination, port: f.destinationPort)) { return s }
        if let s = serviceLookup.find(ServiceKey(proto: proto, address: f.destination, port: 0)),
           serviceInfo[s].flags.contains(.persistent) { return s }
        return nil
    }

    func checkOverload(_ slot: UInt32) {
        refreshCounts(slot)
        let d = dests[Int(slot)]
        if d.upperThreshold != 0 && UInt32(max(0, d.totalConns)) >= d.upperThreshold { dests[Int(slot)].overloaded = true }
    }

    func clearOverload(_ slot: UInt32) {
        guard dests[Int(slot)].overloaded else { return }
        refreshCounts(slot)
        let d = dests[Int(slot)]
        let total = UInt32(max(0, d.totalConns))
        if d.lowerThreshold != 0 {
            if total < d.lowerThreshold { dests[Int(slot)].overloaded = false }
        } else if d.upperThreshold != 0 {
            if UInt64(total) * 4 < UInt64(d.upperThreshold) * 3 { dests[Int(slot)].overloaded = false }
        } else {
            dests[Int(slot)].overloaded = false
        }
    }

    func runScheduler(_ s: Int, _ f: ParsedFrame, now: UInt64) -> UInt32? {
        var ctx = SchedulingContext(source: f.source, sourcePort: f.sourcePort, destination: f.destination,
                                    flags: services[s].options.flags, nowSeconds: UInt32(truncatingIfNeeded: now / 1_000_000_000),
                                    randomState: randomState)
        // The service's destinations are read in place (a copy of the array would retain it).
        let slot: UInt32? = services.withUnsafeMutableBufferPointer { records in
            // Mutable access: no copy of the (uniquely held) buffer; the order itself is not changed.
            records[s].destinations.withUnsafeMutableBufferPointer { order in
                for slot in order { refreshCounts(slot) }
                let picked = records[s].scheduler.schedule(SchedulingDestinations(order: UnsafeBufferPointer(order), table: dests), &ctx)
                guard let i = picked, i >= 0, i < order.count else { return nil }
                return order[i]
            }
        }
        randomState = ctx.randomState
        return slot
    }

    /// Finds or creates the persistence template; returns (template index, destination slot).
    func persistentDestination(_ s: Int, _ f: ParsedFrame, tick: UInt32) -> (UInt32, UInt32)? {
        let key = serviceInfo[s].key
        let options = serviceInfo[s]
        let snet = f.source.isIPv4 ? f.source.masked(ipv4Mask: options.netmask) : f.source.masked(prefix: Int(options.netmask))
        let tkey: ConnectionKey
        if key.isFwmark {
            tkey = ConnectionKey(proto: 0, client: snet, clientPort: 0, virtualAddress: IPAddress(ipv4: key.fwmark), virtualPort: 0)
        } else if key.port == 0 {
            tkey = ConnectionKey(proto: f.proto, client: snet, clientPort: 0, virtualAddress: f.destination, virtualPort: 0)
        } else {
            tkey = ConnectionKey(proto: f.proto, client: snet, clientPort: 0, virtualAddress: f.destination, virtualPort: f.destinationPort)
        }
        let persistTicks = options.timeout &* Self.ticksPerSecond
        if let t = templates.lookup(tkey, template: true) {
            let slot = templates[t].dest
            let d = dests[Int(slot)]
            if d.available && !(expireQuiescentTemplate && d.weight == 0) {
                releaseSyncedTemplate(t) // a local client's now: no longer counts against the sync share
                let old = templates[t].expires
                templates[t].expires = tick &+ persistTicks
                if Int32(bitPattern: templates[t].expires &- old) < 0 { templates.reschedule(t) }
                return (t, slot)
            }
            killTemplate(t, tick: tick) // invalidated: no longer matches, freed once its connections are gone
        }
        if templates.count >= templates.capacity && dropEntryMode != .off { evictTemplate() }
        guard let slot = runScheduler(s, f, now: UInt64(tick) * Self.nanosecondsPerTick) else { return nil }
        guard let t = templates.insert(tkey, dest: slot, stateFlags: ConnectionEntry.flagTemplate,
                                       control: 0, expires: tick &+ persistTicks) else { return nil }
        destCounts.add(DestCount.index(slot, .persistent), 1)
        return (t, slot)
    }
}
