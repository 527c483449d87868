import Glibc

/// Expiry: the shard's timers, and ending an entry (kill, unbind).
extension EngineShard {
    // MARK: Expiry

    /// Unbinds an entry and unhashes it; the wheel frees it at the next pass. Under the lock.
    func kill(_ index: UInt32) {
        guard !table[index].isDead else { return }
        unbind(index)
        table.unhash(index)
        table[index].expires = currentTick
        table.reschedule(index)
    }

    /// Under the lock.
    func unbind(_ index: UInt32) {
        let e = table[index]
        let slot = e.dest
        destCounts.add(DestCount.index(slot, .connection(inactive: e.isInactive)), -1)
        if e.control != 0 { engine.templates[e.control - 1].control -= 1 }
        onEngine { engine in
            engine.clearOverload(slot)
            if !engine.dests[Int(slot)].available && engine.destReferences(slot) == 0 { engine.releaseDestSlot(slot) }
        }
    }

    /// This shard's timers, and the shared ones (templates, estimator). Call at least every 100 ms.
    public func tick(now: UInt64) {
        let t = Engine.tick(now)
        currentTick = t
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let generation = engine.sweepGeneration.load(0)
        if generation != sweptGeneration {
            sweptGeneration = generation
            var victims: [UInt32] = []
            table.forEachLive { i, e in if !engine.dests[Int(e.dest)].available { victims.append(i) } }
            for v in victims { kill(v) }
        }
        table.advance(to: t) { index in
            if offloadEnabled, let key = offloadableKey(index) {
                if !table[index].isDead, let seen = offloadedLastSeen?(key), seen != 0 {
                    let timeout = key.proto == 6 ? timeoutTicks.load(Int(TCPState.established.rawValue))
                                                 : timeoutTicks.load(Engine.udpTimeoutIndex)
                    let expires = Engine.tick(seen) &+ UInt32(truncatingIfNeeded: timeout)
                    if Int32(bitPattern: expires &- t) > 0 {
                        table[index].expires = expires
                        return .keep
                    }
                }
                offloadedEnded?(key)
            }
            if !table[index].isDead { unbind(index) }
            return .free
        }
        prepareEviction()
        if syncCount > 0 {
            engine.collectSync(syncRing, count: syncCount, overflow: syncOverflow, tick: t)
            syncCount = 0
            syncOverflow = 0
        }
        engine.sharedTick(now: now, tick: t)
        releaseHeldFrames(tick: t)
    }
}
