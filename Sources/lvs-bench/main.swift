// lvs-bench: measures Engine.process on the packet path.
//
//   swift run -c release lvs-bench [--connections N ...] [--packets N]
//   swift run -c release lvs-bench --hash-flood 10000,50000
//   swift run -c release lvs-bench --method nat [--connections N ...] [--packets N]
//
// For each table size it fills the table with N TCP connections (SYNs from distinct clients),
// then measures: ns per packet on an existing connection (ACKs in random order), ns per new
// connection (schedule + insert), heap allocations during the existing-connection loop, and
// bytes per connection (entry layout and resident memory growth), and the engine-lock holds of a
// connection listing (-Lnc) in slices, and the Swift retains in the existing-connection loop and
// in new connections (counted when the runtime is linked dynamically). `--check` exits 1 unless
// those loops made no allocation and no retain (scripts/test.sh runs it). With `--method nat` the real server is a NAT one
// (192.168.1.31:8080, -m): the client's packets are rewritten to it, and the real server's
// replies are measured too (reply-index lookup, source back to VIP:80, OutPkts/OutBytes).
import CAllocCounter
import Glibc
import LVSCore
import LVSModel

/// Heap allocations and Swift retains since it was made (retains nil when they are not counted:
/// a build that links the Swift runtime statically keeps the runtime's own swift_retain).
struct PathCounts {
    let allocations = lvs_allocation_count()
    let retains = lvs_retain_count()
    var since: (allocations: UInt64, retains: UInt64?) {
        let allocated = lvs_allocation_count() - allocations, retained = lvs_retain_count() - retains
        return (allocated, retainsCounted ? retained : nil) // counts read before the probe's own retain
    }
    /// Whether the interposed swift_retain runs: one retain of an object must be counted.
    var retainsCounted: Bool {
        let probe = Unmanaged.passRetained(RetainProbe())
        let before = lvs_retain_count()
        retainOnce(probe)
        let counted = lvs_retain_count() > before
        releaseOnce(probe)
        releaseOnce(probe)
        return counted
    }
}
final class RetainProbe {}
// Apart and not inlined, so that the optimizer cannot pair the retain with its release away.
@inline(never) func retainOnce(_ u: Unmanaged<RetainProbe>) { _ = u.retain() }
@inline(never) func releaseOnce(_ u: Unmanaged<RetainProbe>) { u.release() }

/// "N" or "not counted".
func retainText(_ r: UInt64?) -> String { r.map { "\($0)" } ?? "not counted (Swift runtime linked statically)" }

func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func residentBytes() -> Int {
    guard let f = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(f) }
    var size = 0, resident = 0
    _ = withUnsafeMutablePointer(to: &size) { s in withUnsafeMutablePointer(to: &resident) { r in
        withVaList([s, r]) { vfscanf(f, "%ld %ld", $0) } } }
    return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// One 54-byte TCP/IPv4 frame per connection, laid out back to back.
struct FrameSet {
    static let frameSize = 54
    let count: Int
    let storage: UnsafeMutableRawPointer

    init(count: Int, flags: UInt8, clientBase: UInt32, vip: UInt32) {
        self.count = count
        storage = .allocate(byteCount: count * Self.frameSize, alignment: 8)
        for i in 0..<count {
            let p = storage + i * Self.frameSize
            p.initializeMemory(as: UInt8.self, repeating: 0, count: Self.frameSize)
            MACAddress(value: 0x0050_0000_0400).store(to: p)
            MACAddress(value: 0x0050_0000_0300).store(to: p + 6)
            p.storeBytes(of: UInt16(0x0800).bigEndian, toByteOffset: 12, as: UInt16.self)
            p.storeBytes(of: UInt8(0x45), toByteOffset: 14, as: UInt8.self)
            p.storeBytes(of: UInt16(40).bigEndian, toByteOffset: 16, as: UInt16.self)
            p.storeBytes(of: UInt8(255), toByteOffset: 22, as: UInt8.self)
            p.storeBytes(of: UInt8(6), toByteOffset: 23, as: UInt8.self)
            // Client address varies with i / 50000, port with i % 50000 (like many clients).
            p.storeBytes(of: (clientBase + UInt32(i / 50_000)).bigEndian, toByteOffset: 26, as: UInt32.self)
            p.storeBytes(of: vip.bigEndian, toByteOffset: 30, as: UInt32.self)
            p.storeBytes(of: UInt16(10_000 + i % 50_000).bigEndian, toByteOffset: 34, as: UInt16.self)
            p.storeBytes(of: UInt16(80).bigEndian, toByteOffset: 36, as: UInt16.self)
            p.storeBytes(of: UInt8(0x50), toByteOffset: 46, as: UInt8.self)
            p.storeBytes(of: flags, toByteOffset: 47, as: UInt8.self)
        }
    }

    @inline(__always) func frame(_ i: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: storage + i * Self.frameSize, count: Self.frameSize)
    }

}

/// `--method`: how the real servers are reached (DR, a tunnel of a type, or NAT).
enum BenchMethod: String {
    case dr, ipip, gue, gre, nat
    var options: (ForwardMethod, TunnelType, UInt16) {
        switch self {
        case .dr: return (.directRoute, .ipip, 0)
        case .ipip: return (.tunnel, .ipip, 0)
        case .gue: return (.tunnel, .gue, 6080)
        case .gre: return (.tunnel, .gre, 0)
        case .nat: return (.masquerade, .ipip, 0)
        }
    }
}

/// A frame sent: forwarded in place (DR, NAT), or tunnelled through the outbox.
@inline(__always) func sentOut(_ v: Verdict) -> Bool {
    switch v {
    case .forward, .drop(.tunnelled): return true
    default: return false
    }
}

func makeEngine(capacity: Int, method: BenchMethod = .dr) -> Engine {
    var cfg = EngineConfiguration()
    cfg.connectionCapacity = capacity
    let e = Engine(configuration: cfg)
    e.setInterfaces([EngineInterface(index: 2, name: "eth0", mac: MACAddress(value: 0x0050_0000_0400),
                                     addresses: [(IPAddress("192.168.1.21")!, 24)])])
    let key = ServiceKey(proto: .tcp, address: IPAddress("192.168.1.100")!, port: 80)
    try! e.addService(key, ServiceOptions(scheduler: "wlc"))
    var servers: [(String, UInt64)] = [("192.168.1.31", 0x0050_0000_0100), ("192.168.1.32", 0x0050_0000_0200)]
    if method == .nat { servers = [(natServer, 0x0050_0000_0100)] }
    for (a, m) in servers {
        let (fwd, type, port) = method.options
        try! e.addDestination(key, DestinationOptions(address: IPAddress(a)!, port: method == .nat ? natPort : 80, method: fwd,
                                                      tunnelType: type, tunnelPort: port))
        e.setNeighbour(IPAddress(a)!, mac: MACAddress(value: m), interface: 2)
    }
    return e
}

/// The NAT mode's one real server.
let natServer = "192.168.1.31"
let natPort: UInt16 = 8080

func oneDecimal(_ d: Double) -> String { "\((d * 10).rounded() / 10)" }

/// Hash flooding (issue 13 item 5): `n` connection keys from one client IPv6 /64 that the
/// connection table's old bucket hash (an invertible mix with the old default seed 0x5EED1234)
/// put into a single bucket: the third address word cancels what the fourth and the ports added.
func hashFloodKeys(_ n: Int) -> [ConnectionKey] {
    let seed: UInt32 = 0x5EED_1234
    let c0: UInt32 = 0x2001_0DB8, c1: UInt32 = 0x0BAD_0001
    let vipAddress = IPAddress("2001:db8:1::100")!
    let vlow = vipAddress.words.3
    let cport: UInt16 = 40000, vport: UInt16 = 80, proto: UInt8 = 6
    return (0..<n).map { i in
        let c3 = UInt32(i) &* 2_654_435_761 | 1
        var h = (seed ^ c3 ^ c0) &* 0x9E37_79B1
        h ^= (UInt32(cport) << 16 | UInt32(vport)) ^ UInt32(proto) << 8
        h = h &* 0x85EB_CA6B
        let c2 = h ^ vlow ^ c1 ^ 0x1234_5678
        let client = IPAddress(high: UInt64(c0) << 32 | UInt64(c1), low: UInt64(c2) << 32 | UInt64(c3))
        return ConnectionKey(proto: proto, client: client, clientPort: cport, virtualAddress: vipAddress, virtualPort: vport)
    }
}

/// Inserts the adversarial keys as the new-connection path does (a lookup, then the insert), one
/// per tick so they expire oldest first (their chain holds them newest first), then expires them
/// all; times both. Linear: 5x the keys cost about 5x the time; one chain: about 25x.
func runHashFlood(_ n: Int, capacity: Int, scratch: UnsafeMutableRawBufferPointer) -> (insertNs: UInt64, expiryNs: UInt64) {
    let table = ConnectionTable(capacity: capacity) // its default key: the tests' fixed key
    let keys = hashFloodKeys(n)
    let base: UInt32 = 1000
    // Every run starts from cold caches (as a big table is in a running director), so that the
    // small run's fitting into the caches does not make the large one look non-linear.
    func evictCaches() { for i in stride(from: 0, to: scratch.count, by: 64) { scratch[i] &+= 1 } }
    evictCaches()
    var t0 = monotonicNanos()
    for (i, k) in keys.enumerated() {
        precondition(table.lookup(k, template: false) == nil, "duplicate key")
        _ = table.insert(k, dest: 0, stateFlags: 0, control: 0, expires: base &+ UInt32(i))
    }
    let insertNs = monotonicNanos() - t0
    precondition(table.count == n, "insert failed")
    evictCaches()
    t0 = monotonicNanos()
    var freed = 0
    table.advance(to: base &+ UInt32(n) &+ 20) { _ in
        freed += 1
        return .free
    }
    let expiryNs = monotonicNanos() - t0
    precondition(freed == n && table.count == 0, "expiry left \(table.count) entries")
    return (insertNs, expiryNs)
}

var sizes = [1_000, 1_000_000]
var packets = 20_000_000
var prefetch = true
var hashFlood: [Int]?
var method = BenchMethod.dr
var check = false
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--connections": sizes = args.popFirst()!.split(separator: ",").map { Int($0)! }
    case "--packets": packets = Int(args.popFirst()!)!
    case "--no-prefetch": prefetch = false
    case "--check": check = true
    case "--method": method = BenchMethod(rawValue: args.popFirst() ?? "") ?? { print("--method dr|ipip|gue|gre|nat"); exit(2) }()
    case "--hash-flood": hashFlood = args.popFirst()!.split(separator: ",").map { Int($0)! }
    default: print("usage: lvs-bench [--connections N[,N...]] [--packets N] [--no-prefetch] [--method dr|ipip|gue|gre|nat] [--check] | --hash-flood N[,N...]"); exit(2)
    }
}

if let hashFlood {
    var first: (Int, UInt64, UInt64)?
    // One table size for all runs: lvsd's default --max-connections (4 Mi entries, 2 Mi buckets),
    // or twice the largest key count; and 64 MiB to evict caches with.
    let capacity = max(4 << 20, 2 * (hashFlood.max() ?? 0))
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 20, alignment: 64)
    scratch.initializeMemory(as: UInt8.self, repeating: 0)
    print("lvs-bench --hash-flood: keys from one client /64 aimed at one bucket of the old hash; table capacity \(capacity), cold caches, best of 5 runs")
    for n in hashFlood {
        var best = (insertNs: UInt64.max, expiryNs: UInt64.max)
        for _ in 0..<5 {
            let r = runHashFlood(n, capacity: capacity, scratch: scratch)
            best = (min(best.insertNs, r.insertNs), min(best.expiryNs, r.expiryNs))
        }
        var line = "keys=\(n): lookup+insert \(oneDecimal(Double(best.insertNs) / 1e6)) ms, expiry \(oneDecimal(Double(best.expiryNs) / 1e6)) ms"
        if let (n0, i0, e0) = first {
            line += " (\(oneDecimal(Double(n) / Double(n0)))x the keys: lookup+insert \(oneDecimal(Double(best.insertNs) / Double(max(1, i0))))x, expiry \(oneDecimal(Double(best.expiryNs) / Double(max(1, e0))))x the time)"
        } else {
            first = (n, best.insertNs, best.expiryNs)
        }
        print(line)
    }
    exit(0)
}

print("lvs-bench: Engine.process, one core, release build")
print("ConnectionEntry: \(MemoryLayout<ConnectionEntry>.size) bytes (stride \(MemoryLayout<ConnectionEntry>.stride))")
/// One table size; a function so that `engine` is a local (no global-variable retains in the loop).
/// `prefetch` is a parameter: top-level variables belong to the main actor in Swift 6.
/// Returns whether the measured loops made no allocation and no (counted) retain.
func run(connections n: Int, packets: Int, vipValue: UInt32, prefetch: Bool, method: BenchMethod) -> Bool {
    let nat = method == .nat
    let rssBefore = residentBytes()
    let engine = makeEngine(capacity: max(4 << 20, n * 2), method: method)
    let shard: EngineShard = engine.primary
    let syns = FrameSet(count: n, flags: 0x02, clientBase: 0x0A00_0000, vip: vipValue)
    let acks = FrameSet(count: n, flags: 0x10, clientBase: 0x0A00_0000, vip: vipValue)
    let now: UInt64 = 1_000_000_000
    let rssEngine = residentBytes()
    // New connections: schedule + insert.
    var t0 = monotonicNanos()
    var forwarded = 0
    // In batches of 32, as a data-plane worker hands them over.
    func synBatches(_ frames: FrameSet, at time: UInt64) -> Int {
        var ok = 0
        var first = 0
        while first < n {
            let last = min(n, first + 32)
            if prefetch {
                for i in first..<last { shard.prefetch(UnsafeRawBufferPointer(frames.frame(i))) }
                shard.prefetchEntries()
            }
            for i in first..<last { if sentOut(shard.process(frames.frame(i), interface: 2, now: time)) { ok += 1 } }
            shard.outbox.drain { _, _ in } // tunnelled frames: what the worker sends after a batch
            first = last
        }
        return ok
    }
    forwarded = synBatches(syns, at: now)
    let newNs = Double(monotonicNanos() - t0) / Double(n)
    precondition(forwarded == n && engine.connectionCount == n, "setup failed: \(forwarded) of \(n)")
    let rssFilled = residentBytes()
    // Existing connections: ACKs in a scattered order (stride by a large odd step).
    let step = 7_919
    var index = 0
    let passes = max(1, packets / n)
    let existingCounts = PathCounts()
    var elapsed: UInt64 = 0
    var sent = 0
    // Received frames are hot in cache: each packet is written into one of 32 ring-like buffers
    // (client address, port, TTL: the bytes that differ), then the batch is handed over as the
    // data-plane worker does.
    let batch = 32
    let ring = UnsafeMutableRawPointer.allocate(byteCount: batch * FrameSet.frameSize, alignment: 64)
    for b in 0..<batch { (ring + b * FrameSet.frameSize).copyMemory(from: acks.frame(0).baseAddress!, byteCount: FrameSet.frameSize) }
    let rounds = n / batch
    for _ in 0..<passes {
        t0 = monotonicNanos()
        for _ in 0..<rounds {
            for b in 0..<batch {
                let p = ring + b * FrameSet.frameSize
                p.storeBytes(of: (0x0A00_0000 + UInt32(index / 50_000)).bigEndian, toByteOffset: 26, as: UInt32.self)
                p.storeBytes(of: UInt16(10_000 + index % 50_000).bigEndian, toByteOffset: 34, as: UInt16.self)
                p.storeBytes(of: UInt8(255), toByteOffset: 22, as: UInt8.self)
                if nat { // the NAT rewrite changed the destination: put the VIP back
                    p.storeBytes(of: vipValue.bigEndian, toByteOffset: 30, as: UInt32.self)
                    p.storeBytes(of: UInt16(80).bigEndian, toByteOffset: 36, as: UInt16.self)
                }
                index += step
                if index >= n { index -= n * (index / n) }
            }
            sent += processBatch(shard, ring: ring, batch: batch, now: now, prefetch: prefetch)
        }
        elapsed += monotonicNanos() - t0
    }
    let measured = passes * rounds * batch
    let existing = existingCounts.since
    let allocs = existing.allocations
    precondition(sent == measured, "lost packets")
    let existingNs = Double(elapsed) / Double(measured)
    let replyNs = nat ? measureReplies(shard, connections: n, packets: packets, ring: ring, batch: batch, now: now, prefetch: prefetch) : nil
    // New connections in steady state: everything expires (the clock jumps past the SYN_RECV
    // timeout), and as many new clients connect, reusing freed entries whose memory is already
    // mapped, as in a director that has been running for a while.
    let later = now + 3_600_000_000_000
    engine.tick(now: later)
    precondition(engine.connectionCount == 0, "expiry left \(engine.connectionCount) entries")
    let others = FrameSet(count: n, flags: 0x02, clientBase: 0x0B00_0000, vip: vipValue)
    let steadyCounts = PathCounts()
    t0 = monotonicNanos()
    let reforwarded = synBatches(others, at: later)
    let steadyNs = Double(monotonicNanos() - t0) / Double(n)
    let steady = steadyCounts.since
    precondition(reforwarded == n && engine.connectionCount == n, "steady-state setup failed: \(reforwarded) of \(n)")
    let perConn = Double(rssFilled - rssEngine) / Double(n)
    let existingText = oneDecimal(existingNs)
    let newText = oneDecimal(newNs)
    let growthText = oneDecimal(perConn)
    let engineKiB = (rssEngine - rssBefore) / 1024
    let reserved = engine.primary.table.bytesPerConnection
    print("connections=\(n): existing \(existingText) ns/packet over \(measured) packets (batches of \(batch)), new \(newText) ns/connection (first use of the memory), new \(oneDecimal(steadyNs)) ns/connection (steady state, entries reused)")
    print("  allocations in existing-connection loop: \(allocs)")
    print("  retains: existing-connection loop \(retainText(existing.retains)); new connections (steady state, \(n)) \(retainText(steady.retains)), allocations \(steady.allocations)")
    var clean = allocs == 0 && existing.retains == 0 && steady.retains == 0
    if let (ns, replies) = replyNs {
        print("  NAT replies (real server to client): \(oneDecimal(ns)) ns/packet, allocations: \(replies.allocations), retains: \(retainText(replies.retains))")
        clean = clean && replies.allocations == 0 && replies.retains == 0
    }
    print("  table: \(reserved) bytes/connection reserved, resident growth \(growthText) bytes/connection (engine base \(engineKiB) KiB)")
    measureListing(shard, connections: n, now: later)
    measureCheckpoint(shard, connections: n, now: later)
    return clean
}

/// A restart-state checkpoint (lvsd --checkpoint-interval) as a worker takes it: the shard's table
/// in slices, one engine-lock hold each. Prints the longest and the mean hold and the whole walk.
func measureCheckpoint(_ shard: EngineShard, connections n: Int, now: UInt64) {
    var export = StateExport()
    var longest: UInt64 = 0
    let start = monotonicNanos()
    var done = false
    while !done {
        let t = monotonicNanos()
        done = shard.exportState(&export, now: now)
        longest = max(longest, monotonicNanos() - t)
    }
    let total = monotonicNanos() - start
    precondition(export.entries.count == n, "checkpoint found \(export.entries.count) of \(n)")
    print("  checkpoint (state file): \(export.lockHolds) lock holds of up to \(StateExport.defaultSliceEntries) entries, longest \(oneDecimal(Double(longest) / 1000)) µs, mean \(oneDecimal(Double(total) / Double(export.lockHolds) / 1000)) µs, whole table \(oneDecimal(Double(total) / 1e6)) ms")
}

/// Hands one batch of `batch` frames in `ring` to the shard as a data-plane worker does
/// (announced for prefetch first when `prefetch`); returns how many were forwarded.
@inline(__always)
func processBatch(_ shard: EngineShard, ring: UnsafeMutableRawPointer, batch: Int, now: UInt64, prefetch: Bool) -> Int {
    if prefetch {
        for b in 0..<batch {
            shard.prefetch(UnsafeRawBufferPointer(start: ring + b * FrameSet.frameSize, count: FrameSet.frameSize))
        }
        shard.prefetchEntries()
    }
    var sent = 0
    for b in 0..<batch {
        let frame = UnsafeMutableRawBufferPointer(start: ring + b * FrameSet.frameSize, count: FrameSet.frameSize)
        if sentOut(shard.process(frame, interface: 2, now: now)) { sent += 1 }
    }
    shard.outbox.drain { _, _ in }
    return sent
}

/// NAT replies on the existing connections (their frames from the real server to the client, in
/// the same scattered order): ns per packet and heap allocations.
func measureReplies(_ shard: EngineShard, connections n: Int, packets: Int, ring: UnsafeMutableRawPointer, batch: Int,
                    now: UInt64, prefetch: Bool) -> (Double, (allocations: UInt64, retains: UInt64?)) {
    let server = IPAddress(natServer)!.ipv4Value
    let step = 7_919
    var index = 0, sent = 0
    var elapsed: UInt64 = 0
    let counts = PathCounts()
    let rounds = n / batch
    for _ in 0..<max(1, packets / n) {
        let t0 = monotonicNanos()
        for _ in 0..<rounds {
            for b in 0..<batch {
                let p = ring + b * FrameSet.frameSize
                p.storeBytes(of: server.bigEndian, toByteOffset: 26, as: UInt32.self)
                p.storeBytes(of: (0x0A00_0000 + UInt32(index / 50_000)).bigEndian, toByteOffset: 30, as: UInt32.self)
                p.storeBytes(of: natPort.bigEndian, toByteOffset: 34, as: UInt16.self)
                p.storeBytes(of: UInt16(10_000 + index % 50_000).bigEndian, toByteOffset: 36, as: UInt16.self)
                p.storeBytes(of: UInt8(255), toByteOffset: 22, as: UInt8.self)
                index += step
                if index >= n { index -= n * (index / n) }
            }
            sent += processBatch(shard, ring: ring, batch: batch, now: now, prefetch: prefetch)
        }
        elapsed += monotonicNanos() - t0
    }
    let measured = max(1, packets / n) * rounds * batch
    precondition(sent == measured, "lost replies: \(measured - sent)")
    return (Double(elapsed) / Double(measured), counts.since)
}

/// `-Lnc` as a worker takes it: the shard's table in slices, one engine-lock hold each. Prints the
/// longest and the mean hold (a worker stalls for one hold at most per slice) and the whole walk.
func measureListing(_ shard: EngineShard, connections n: Int, now: UInt64) {
    var listing = ConnectionListing()
    var longest: UInt64 = 0
    var overOneMs = 0
    let start = monotonicNanos()
    var done = false
    while !done {
        let t = monotonicNanos()
        done = shard.listConnections(&listing, now: now)
        let held = monotonicNanos() - t
        longest = max(longest, held)
        if held > 1_000_000 { overOneMs += 1 }
    }
    let total = monotonicNanos() - start
    precondition(listing.entries.count == n, "listing found \(listing.entries.count) of \(n)")
    print("  listing (-Lnc): \(listing.lockHolds) lock holds of up to \(ConnectionListing.defaultSliceEntries) entries / \(ConnectionListing.defaultSliceBuckets) buckets, longest \(oneDecimal(Double(longest) / 1000)) µs (\(overOneMs) over 1 ms), mean \(oneDecimal(Double(total) / Double(listing.lockHolds) / 1000)) µs, whole table \(oneDecimal(Double(total) / 1e6)) ms")
}

let vip = IPAddress("192.168.1.100")!.ipv4Value
if method != .dr && method != .nat { print("real servers: \(method.rawValue) tunnel (frames encapsulated into the outbox, drained after each batch)") }
var clean = true
for n in sizes where !run(connections: n, packets: packets, vipValue: vip, prefetch: prefetch, method: method) { clean = false }
if check {
    // The packet path's promise: no allocation and no retain per packet, new connections included.
    guard PathCounts().retainsCounted else {
        print("lvs-bench --check: retains are not counted in this build (Swift runtime linked statically): build without --static-swift-stdlib")
        exit(1)
    }
    print(clean ? "lvs-bench --check: 0 allocations and 0 retains in the measured loops" : "lvs-bench --check: FAILED: the measured loops allocated or retained (above)")
    exit(clean ? 0 : 1)
}
