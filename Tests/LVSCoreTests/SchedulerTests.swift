import Testing
@testable import LVSCore
import LVSModel

// MARK: - Appendix A vectors

@Suite struct SchedulerVectorTests {
    @Test(arguments: [("192.168.1.50", UInt16(0), 64, 257), ("192.168.1.51", 0, 162, 648),
                      ("10.1.2.3", 0, 2, 10), ("192.168.1.50", 51234, 229, 257)])
    func hash32Buckets(address: String, port: UInt16, shBucket: Int, lblcBucket: Int) {
        let a = IPAddress(address)!
        #expect(SourceHashingScheduler.bucket(a, port: port, offset: 0) == shBucket)
        if port == 0 { #expect(DestinationHashingScheduler.bucket(a) == shBucket) }
        #expect(LocalityTable.bucket(a) == lblcBucket)
    }

    @Test func maglevOffsetsAndSkips() {
        let expected: [(String, Int, Int)] = [("10.0.0.13", 2586, 2286), ("10.0.0.12", 870, 874), ("10.0.0.11", 4032, 1541)]
        for (address, offset, skip) in expected {
            #expect(MaglevScheduler.offset(of: IPAddress(address)!, port: 80) == offset)
            #expect(MaglevScheduler.skip(of: IPAddress(address)!, port: 80) == skip)
        }
    }

    static func maglevPool() -> Pool {
        var p = Pool()
        p.add(".11", address: "10.0.0.11")
        p.add(".12", address: "10.0.0.12")
        p.add(".13", address: "10.0.0.13")
        return p
    }

    @Test func maglevTableAndLookups() {
        let p = Self.maglevPool()
        var s = MaglevScheduler()
        s.update(p)
        #expect(p.order == [2, 1, 0])
        #expect(s.slotCount(ofIndex: 0) == 1365) // .13
        #expect(s.slotCount(ofIndex: 1) == 1364) // .12
        #expect(s.slotCount(ofIndex: 2) == 1364) // .11
        let lookups: [(String, UInt32, String)] = [("192.168.1.50", 1557, ".12"), ("192.168.1.51", 1502, ".13"),
                                                   ("10.1.2.3", 1263, ".11")]
        for (client, slot, dest) in lookups {
            #expect(MaglevScheduler.hashKey(IPAddress(client)!, port: 0, key: MaglevScheduler.key1) % 4093 == slot)
            #expect(p.name(at: s.indexAt(tableSlot: Int(slot))) == dest)
            #expect(s.pick(p, ctx(client)) == dest)
        }
    }

    @Test(arguments: [([Int32(4), 3, 2], "AABABCABC"), ([1, 1, 1], "ABC"), ([5, 1], "AAAAAB"),
                      ([2, 0, 1], "AAC"), ([6, 4, 2], "AABABC")])
    func wrrSequences(weights: [Int32], cycle: String) {
        let names = ["A", "B", "C"]
        let p = Pool(Array(zip(names, weights)))
        var s = WeightedRoundRobinScheduler()
        s.update(p)
        #expect(s.sequence(p, cycle.count * 3) == String(repeating: cycle, count: 3))
    }
}

// MARK: - Per-scheduler behaviour

@Suite struct SchedulerTests {
    // rr

    @Test func rrOrderAndSkipping() {
        var p = Pool([("C", 1), ("B", 1), ("A", 1)])
        var s = RoundRobinScheduler()
        s.update(p)
        #expect(s.sequence(p, 6) == "CBACBA")
        p["B"].weight = 0
        #expect(s.sequence(p, 4) == "CACA")
        p["B"].weight = 5
        p["A"].overloaded = true
        #expect(s.sequence(p, 4) == "CBCB")
    }

    @Test func rrRemovalOfLastChosen() {
        var p = Pool([("C", 1), ("B", 1), ("A", 1)])
        var s = RoundRobinScheduler()
        s.update(p)
        #expect(s.sequence(p, 2) == "CB")
        let change = p.remove("B") // pointer moves back to C
        s.update(p, change)
        #expect(s.sequence(p, 3) == "ACA")
        // Removing the head while it is the pointer restarts from the head.
        var q = Pool([("C", 1), ("B", 1), ("A", 1)])
        var t = RoundRobinScheduler()
        t.update(q)
        #expect(t.pick(q) == "C")
        t.update(q, q.remove("C"))
        #expect(t.sequence(q, 3) == "BAB")
    }

    // wrr

    @Test func wrrSkipsOverloadedAndStops() {
        var p = Pool([("A", 4), ("B", 3), ("C", 2)])
        p["A"].overloaded = true
        var s = WeightedRoundRobinScheduler()
        s.update(p)
        #expect(s.sequence(p, 10) == "BBCBCBBCBC")

        var q = Pool([("A", 1), ("B", 1)])
        var t = WeightedRoundRobinScheduler()
        t.update(q)
        #expect(t.pick(q) == "A")
        q["A"].overloaded = true
        q["B"].overloaded = true
        #expect(t.pick(q) == nil)
        q["B"].overloaded = false
        #expect(t.pick(q) == "B")
    }

    @Test func wrrChangeResetsToHead() {
        var p = Pool([("A", 1), ("B", 1), ("C", 1)])
        var s = WeightedRoundRobinScheduler()
        s.update(p)
        #expect(s.sequence(p, 2) == "AB")
        s.update(p, p.remove("B"))
        #expect(s.sequence(p, 3) == "ACA")
        // Weights 4,2 (gcd 2: cw steps 3, 1), then C (weight 1) added: gcd 1, cw kept at 1.
        var q = Pool([("A", 4), ("B", 2)])
        var t = WeightedRoundRobinScheduler()
        t.update(q)
        #expect(t.sequence(q, 6) == "AABAAB")
        q.add("C", weight: 1)
        t.update(q, .added(slot: q.slot("C")))
        #expect(t.sequence(q, 7) == "CABAAAB")
    }

    // lc / wlc / sed / nq

    @Test func lcChoosesLeastOverheadFirstWinsTies() {
        var p = Pool([("A", 1), ("B", 5), ("C", 1)])
        p["A"].activeConns = 2                              // 512
        p["B"].activeConns = 1; p["B"].inactConns = 10      // 266
        p["C"].activeConns = 1; p["C"].inactConns = 10      // 266
        var s = LeastConnectionScheduler()
        #expect(s.pick(p) == "B")
        p["B"].weight = 0
        #expect(s.pick(p) == "C")
        p["B"].weight = 1
        p["B"].overloaded = true
        #expect(s.pick(p) == "C")
        p["C"].inactConns = 300                             // 556 > 512
        #expect(s.pick(p) == "A")
    }

    @Test func wlcWeightedChoice() {
        var p = Pool([("A", 1), ("B", 3)])
        p["A"].activeConns = 1   // 256 / 1
        p["B"].activeConns = 2   // 512 / 3
        var s = WeightedLeastConnectionScheduler()
        #expect(s.pick(p) == "B")
        p["B"].weight = 2        // 512 / 2: tie, first wins
        #expect(s.pick(p) == "A")
        p["A"].inactConns = 1    // 257 / 1 > 256
        #expect(s.pick(p) == "B")
        p["B"].overloaded = true
        #expect(s.pick(p) == "A")
    }

    @Test func sedIgnoresInactive() {
        var p = Pool([("A", 1), ("B", 3)])
        p["A"].inactConns = 100  // (0+1)/1
        p["B"].activeConns = 2   // (2+1)/3: tie, first wins
        var s = ShortestExpectedDelayScheduler()
        #expect(s.pick(p) == "A")
        p["B"].weight = 4
        #expect(s.pick(p) == "B")
        p["B"].weight = 0
        #expect(s.pick(p) == "A")
    }

    @Test func nqPrefersIdle() {
        var p = Pool([("A", 10), ("B", 1), ("C", 1)])
        p["A"].activeConns = 1   // sed would pick A: 2/10
        #expect(NeverQueueScheduler().pickOnce(p) == "B")
        p["B"].overloaded = true
        #expect(NeverQueueScheduler().pickOnce(p) == "C")
        p["C"].activeConns = 1   // nobody idle: sed rule
        #expect(NeverQueueScheduler().pickOnce(p) == "A")
        var q = Pool([("A", 1), ("B", 1)])
        q["A"].activeConns = 1; q["B"].activeConns = 1
        #expect(NeverQueueScheduler().pickOnce(q) == "A") // tie
        q["A"].activeConns = 2
        #expect(NeverQueueScheduler().pickOnce(q) == "B")
    }

    // fo / ovf

    @Test func foHighestWeight() {
        var p = Pool([("A", 1), ("B", 3), ("C", 3)])
        var s = WeightedFailoverScheduler()
        #expect(s.pick(p) == "B")
        p["B"].overloaded = true
        #expect(s.pick(p) == "C")
        p["C"].weight = 0
        #expect(s.pick(p) == "A")
    }

    @Test func ovfOverflows() {
        var p = Pool([("A", 2), ("B", 5), ("C", 5)])
        var s = WeightedOverflowScheduler()
        p["B"].activeConns = 5
        p["B"].inactConns = 100  // inactive not counted
        #expect(s.pick(p) == "B")
        p["B"].activeConns = 6
        #expect(s.pick(p) == "C")
        p["C"].activeConns = 6
        #expect(s.pick(p) == "A")
        p["A"].activeConns = 3
        #expect(s.pick(p) == nil)
    }

    // sh

    @Test func shFillIncludesWeightZero() {
        let p = Pool([("A", 3), ("B", 0), ("C", 1)])
        var s = SourceHashingScheduler()
        s.update(p)
        #expect(Array(s.buckets[0..<10]) == [0, 0, 0, 1, 2, 0, 0, 0, 1, 2])
        var e = SourceHashingScheduler()
        e.update(Pool())
        #expect(e.buckets.allSatisfy { $0 == -1 })
    }

    @Test func shPortAndFallback() {
        var p = Pool([("A", 1), ("B", 1)]) // even buckets A, odd B
        var s = SourceHashingScheduler()
        s.update(p)
        #expect(s.pick(p, ctx("192.168.1.50")) == "A")                            // bucket 64
        #expect(s.pick(p, ctx("192.168.1.50", port: 51234)) == "A")               // port ignored
        #expect(s.pick(p, ctx("192.168.1.50", port: 51234, flags: .hashPort)) == "B") // bucket 229
        s.update(p, p.setWeight("A", 0))
        #expect(s.pick(p, ctx("192.168.1.50")) == nil)
        // Probe k = 0: bucket 128 (A), k = 1: bucket 129 (B).
        #expect(s.pick(p, ctx("192.168.1.50", flags: .fallback)) == "B")
        p["B"].overloaded = true
        #expect(s.pick(p, ctx("192.168.1.50", flags: .fallback)) == nil)
    }

    // dh

    @Test func dhBuckets() {
        var p = Pool([("A", 5), ("B", 1), ("C", 1)]) // bucket b → b % 3, weights ignored
        var s = DestinationHashingScheduler()
        s.update(p)
        #expect(s.pick(p, ctx("1.1.1.1", destination: "192.168.1.50")) == "B") // 64
        #expect(s.pick(p, ctx("1.1.1.2", destination: "192.168.1.51")) == "A") // 162
        #expect(s.pick(p, ctx("1.1.1.3", destination: "10.1.2.3")) == "C")     // 2
        s.update(p, p.setWeight("B", 0))
        #expect(s.pick(p, ctx(destination: "192.168.1.50")) == nil)
        p["B"].weight = 1
        p["B"].overloaded = true
        #expect(s.pick(p, ctx(destination: "192.168.1.50", flags: .fallback)) == nil)
    }

    // lblc

    @Test func lblcHitMissAndOverloadRule() {
        var p = Pool([("A", 1), ("B", 1)])
        var s = LocalityBasedLeastConnectionScheduler()
        s.update(p)
        let x = ctx(destination: "192.168.1.50")
        #expect(s.pick(p, x) == "A")              // miss: wlc, first wins
        #expect(s.cachedSlot(for: IPAddress("192.168.1.50")!) == p.slot("A"))
        p["A"].activeConns = 1; p["A"].inactConns = 50
        #expect(s.pick(p, x) == "A")              // hit although wlc prefers B
        p["A"].overloaded = true
        #expect(s.pick(p, x) == "A")              // OVERLOAD flag not checked on a hit
        p["A"].overloaded = false
        p["A"].activeConns = 5; p["B"].activeConns = 1
        #expect(s.pick(p, x) == "A")              // active > weight but nobody has active*2 < weight
        p["B"].activeConns = 0
        #expect(s.pick(p, x) == "B")              // lblc-overloaded: re-pick, entry replaced
        #expect(s.cachedSlot(for: IPAddress("192.168.1.50")!) == p.slot("B"))
        p["B"].activeConns = 3; p["A"].activeConns = 0
        s.update(p, p.setWeight("B", 0))
        #expect(s.pick(p, x) == "A")              // weight 0 entry is not used
        #expect(s.pick(p, ctx(destination: "10.1.2.3")) == "A")
        #expect(s.cacheCount == 2)
        s.update(p, p.remove("A"))
        #expect(s.cachedSlot(for: IPAddress("192.168.1.50")!) == nil)
        #expect(s.pick(p, x) == nil)              // only B left, weight 0
    }

    @Test func lblcCacheIsBounded() {
        let p = Pool([("A", 1), ("B", 1)])
        var s = LocalityBasedLeastConnectionScheduler()
        s.update(p)
        let limit = LocalityBasedLeastConnectionScheduler.maxEntries
        #expect(limit == 16384 * 3 / 2)
        for n in 0..<(limit + 10) {
            #expect(s.pick(p, ctx(destination: address(n))) != nil)
        }
        #expect(s.cacheCount == limit)
        #expect(s.cachedSlot(for: IPAddress(address(limit + 5))!) == nil)
    }

    @Test func lblcExpiry() {
        let p = Pool([("A", 1)])
        var s = LocalityBasedLeastConnectionScheduler()
        s.expiration = 100
        s.update(p)
        _ = s.pick(p, ctx(destination: "192.168.1.50", now: 0))
        var t: UInt32 = 60
        while t < 1800 {   // 29 quiet timer runs: counter 1 → 30
            s.expire(nowSeconds: t)
            s.expire(nowSeconds: t + 1) // rate-limited to one run per 60 s
            if t == 1740 { _ = s.pick(p, ctx(destination: "192.168.1.51", now: 1750)) }
            t += 60
        }
        #expect(s.cacheCount == 2)
        s.expire(nowSeconds: 1800)       // the 30th run is the full scan
        #expect(s.cacheCount == 1)
        #expect(s.cachedSlot(for: IPAddress("192.168.1.51")!) == p.slot("A"))
    }

    @Test func lblcOverfullCollection() {
        let p = Pool([("A", 1)])
        var s = LocalityBasedLeastConnectionScheduler()
        s.update(p)
        let total = 16384 + 300
        for n in 0..<total { _ = s.pick(p, ctx(destination: address(n), now: 0)) }
        #expect(s.cacheCount == total)
        s.expire(nowSeconds: 100)        // entries younger than 6 min stay
        #expect(s.cacheCount == total)
        s.expire(nowSeconds: 400)        // goal (300*4/3 = 400), whole buckets at a time
        #expect(s.cacheCount <= total - 400)
        #expect(s.cacheCount > total - 500)
    }

    // lblcr

    @Test func lblcrSetGrowsAndShrinks() {
        var p = Pool([("A", 1), ("B", 1), ("C", 1)])
        var s = LocalityBasedLeastConnectionReplicationScheduler()
        s.expiration = 100
        s.update(p)
        let key = IPAddress("192.168.1.50")!
        #expect(s.pick(p, ctx(destination: "192.168.1.50", now: 10)) == "A")
        #expect(s.cachedSet(for: key) == [p.slot("A")])
        p["A"].activeConns = 5
        #expect(s.pick(p, ctx(destination: "192.168.1.50", now: 20)) == "B") // A lblc-overloaded → wlc adds B
        #expect(s.cachedSet(for: key) == [p.slot("B"), p.slot("A")])
        p["A"].activeConns = 1; p["B"].activeConns = 1; p["C"].activeConns = 0
        #expect(s.pick(p, ctx(destination: "192.168.1.50", now: 30)) == "B") // tie in the set: newest member
        p["B"].overloaded = true
        #expect(s.pick(p, ctx(destination: "192.168.1.50", now: 40)) == "A") // OVERLOAD members skipped
        p["B"].overloaded = false
        p["A"].activeConns = 3; p["B"].activeConns = 2
        #expect(s.pick(p, ctx(destination: "192.168.1.50", now: 50)) == "C") // both over weight, C idle
        #expect(s.cachedSet(for: key)?.count == 3)
        // Not modified for > 100 s: the most loaded member (A) is dropped.
        p["C"].activeConns = 0
        #expect(s.pick(p, ctx(destination: "192.168.1.50", now: 200)) == "C")
        #expect(s.cachedSet(for: key) == [p.slot("C"), p.slot("B")])
        s.update(p, p.remove("B"))
        #expect(s.cachedSet(for: key) == [p.slot("C")])
    }

    @Test func lblcrNoDestination() {
        var p = Pool([("A", 1)])
        var s = LocalityBasedLeastConnectionReplicationScheduler()
        s.update(p)
        #expect(s.pick(p) == "A")
        s.update(p, p.setWeight("A", 0))
        #expect(s.pick(p) == nil)
    }

    // mh

    @Test func mhFallbackAndLastWeight() {
        var p = SchedulerVectorTests.maglevPool()
        var s = MaglevScheduler()
        s.update(p)
        s.update(p, p.setWeight(".12", 0))
        #expect(s.slotCount(ofIndex: 1) == 1364)                  // quiesced: keeps its slots
        #expect(s.pick(p, ctx("192.168.1.50")) == nil)
        let fallback = s.pick(p, ctx("192.168.1.50", flags: .fallback))
        #expect(fallback == ".13" || fallback == ".11")
        #expect(s.pick(p, ctx("192.168.1.50", flags: .fallback)) == fallback)
        #expect(s.pick(p, ctx("192.168.1.51", flags: .fallback)) == ".13") // available primary
        p[".13"].overloaded = true
        p[".11"].overloaded = true
        #expect(s.pick(p, ctx("192.168.1.50", flags: .fallback)) == nil)
        // A destination added with weight 0 gets no slots.
        var q = SchedulerVectorTests.maglevPool()
        q.add(".14", address: "10.0.0.14", weight: 0)
        var t = MaglevScheduler()
        t.update(q)
        #expect(t.slotCount(ofIndex: 0) == 0)
        #expect((1...3).map { t.slotCount(ofIndex: $0) } == [1365, 1364, 1364])
    }

    @Test func mhWeightsAndShift() {
        var s = MaglevScheduler()
        s.update(Pool([("A", 2), ("B", 1)]))
        #expect([s.slotCount(ofIndex: 0), s.slotCount(ofIndex: 1)] == [2729, 1364])
        // gcd 1, max 1000: rshift = fls(1000) - 6 = 4, turns 62 and 1.
        s.update(Pool([("A", 1000), ("B", 1)]))
        #expect([s.slotCount(ofIndex: 0), s.slotCount(ofIndex: 1)] == [4029, 64])
        s.update(Pool([("A", 0), ("B", 0)]))
        #expect(s.slotCount(ofIndex: 0) + s.slotCount(ofIndex: 1) == 0)
    }

    @Test func mhPort() {
        let p = SchedulerVectorTests.maglevPool()
        var s = MaglevScheduler()
        s.update(p)
        #expect(s.pick(p, ctx("192.168.1.50", port: 1000)) == ".12") // port ignored without mh-port
        let results = Set((1...40).map { s.pick(p, ctx("192.168.1.50", port: UInt16($0), flags: .hashPort))! })
        #expect(results.count > 1)
        for port in [UInt16(1), 80, 51234] {
            let slot = MaglevScheduler.hashKey(IPAddress("192.168.1.50")!, port: port, key: MaglevScheduler.key1) % 4093
            #expect(s.pick(p, ctx("192.168.1.50", port: port, flags: .hashPort)) == p.name(at: s.indexAt(tableSlot: Int(slot))))
        }
    }

    // twos

    @Test func twosIsDeterministicAndPrefersLessLoaded() {
        var p = Pool([("A", 1), ("B", 1), ("C", 2)])
        p["A"].activeConns = 100
        func run(seed: UInt64) -> [String] {
            var s = PowerOfTwoChoicesScheduler()
            var c = ctx(seed: seed)
            return (0..<300).map { _ in s.pick(p, &c)! }
        }
        let first = run(seed: 42)
        #expect(first == run(seed: 42))
        #expect(first != run(seed: 43))
        #expect(Set(first).isSuperset(of: ["A", "B", "C"]))
        let count = { (n: String) in first.filter { $0 == n }.count }
        #expect(count("A") < count("B"))
        #expect(count("B") < count("C"))
        p["B"].weight = 0
        p["C"].overloaded = true
        var s = PowerOfTwoChoicesScheduler()
        #expect(s.sequence(p, 5) == "AAAAA")
    }

    // registry and the no-destination cases

    @Test func registryNames() {
        #expect(SchedulerInstance.names == ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq",
                                            "fo", "ovf", "mh", "twos", "none"])
        for name in SchedulerInstance.names {
            #expect(SchedulerInstance(name: name)?.name == name)
        }
        #expect(SchedulerInstance(name: "foo") == nil)
        var none = SchedulerInstance(name: "none")!
        #expect(none.pick(Pool([("A", 1)])) == nil)
    }

    @Test(arguments: SchedulerInstance.names)
    func noDestination(name: String) {
        var s = SchedulerInstance(name: name)!
        for flags in [ServiceFlags(), .fallback] {
            let empty = Pool()
            s.update(empty, flags: flags)
            #expect(s.pick(empty, ctx(flags: flags)) == nil)

            let zero = Pool([("A", 0), ("B", 0)])
            s.update(zero, flags: flags)
            #expect(s.pick(zero, ctx(flags: flags)) == nil)

            var quiesced = Pool([("A", 1), ("B", 1)])
            s.update(quiesced, flags: flags)
            s.update(quiesced, quiesced.setWeight("A", 0), flags: flags)
            s.update(quiesced, quiesced.setWeight("B", 0), flags: flags)
            #expect(s.pick(quiesced, ctx(flags: flags)) == nil)

            var overloaded = Pool([("A", 1), ("B", 1)])
            overloaded["A"].overloaded = true
            overloaded["B"].overloaded = true
            s.update(overloaded, flags: flags)
            #expect(s.pick(overloaded, ctx(flags: flags)) == nil)
        }
    }

    @Test(arguments: SchedulerInstance.names.filter { $0 != "none" })
    func everySchedulerPicksWhenPossible(name: String) {
        var s = SchedulerInstance(name: name)!
        let p = Pool([("A", 1), ("B", 2)])
        s.update(p)
        #expect(s.pick(p, ctx(destination: "192.168.1.50")) != nil)
    }

    @Test func instanceMutatesInPlace() {
        let p = Pool([("A", 1), ("B", 1)])
        var s = SchedulerInstance(name: "lblc")!
        s.update(p)
        _ = s.pick(p, ctx(destination: "192.168.1.50"))
        func storage(_ s: SchedulerInstance) -> UInt? {
            guard case let .lblc(l) = s else { return nil }
            return l.table.entries.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        }
        let before = storage(s)
        for _ in 0..<10 { _ = s.pick(p, ctx(destination: "192.168.1.50")) } // hits write lastUse
        #expect(before != nil && storage(s) == before)
    }
}

private func address(_ n: Int) -> String {
    "10.\((n >> 16) & 255).\((n >> 8) & 255).\(n & 255)"
}

extension Scheduler {
    func pickOnce(_ p: Pool) -> String? {
        var s = self
        return s.pick(p)
    }
}
