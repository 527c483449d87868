import Testing
@testable import LVSCore
import LVSModel

/// The restart state file (issue 16): what a stopping lvsd writes comes back whole in the next
/// one; a file it cannot read (truncated, corrupt, another version, random bytes) is refused
/// whole, before one entry is applied, and never crashes the reader.
@Suite struct StateFileTests {
    /// Three established connections, two clients with persistence templates (360 s).
    static func busyEngine() -> Engine {
        let e = seedEngine(persistent: 360)
        SyncFailoverTests.establish(e, 6000, from: "192.168.1.12", at: second)
        SyncFailoverTests.establish(e, 6001, from: "192.168.1.13", at: second)
        SyncFailoverTests.establish(e, 6002, from: "192.168.1.12", at: second)
        return e
    }

    /// What -Lnc would compare: everything but the remaining time.
    static func summary(_ e: Engine, at now: UInt64) -> [String] {
        e.connections(now: now).map {
            "\($0.protocolName) \($0.clientAddress):\($0.clientPort) \($0.virtualAddress):\($0.virtualPort) -> \($0.destinationAddress):\($0.destinationPort) \($0.state) \($0.isTemplate)"
        }.sorted()
    }

    /// The whole table and its templates come back bound to the same real servers, with the
    /// time each had left, and the next packet of each connection goes to its old real server.
    @Test func roundTripRestoresConnectionsAndTemplates() throws {
        let old = Self.busyEngine()
        let before = Self.summary(old, at: 2 * second)
        #expect(before.count == 5)
        let bytes = StateFile.encode(old.exportState(now: 2 * second))
        let entries = try StateFile.decode(bytes).get()
        #expect(entries.count == 5)

        let new = seedEngine(persistent: 360)
        let r = new.restoreState(entries, now: 3 * second)
        #expect(r == { var c = RestoreCounters(); c.entries = 5; c.connections = 3; c.templates = 2; return c }())
        #expect(Self.summary(new, at: 3 * second) == before)
        // The time left carries over (≤ the old remaining time, not a fresh full timeout).
        let oldLeft = old.connections(now: 2 * second).filter(\.isTemplate).map(\.expiresSeconds).max()!
        #expect(new.connections(now: 3 * second).filter(\.isTemplate).allSatisfy { $0.expiresSeconds <= oldLeft })
        // The restored templates are this director's own: not counted as a peer's.
        #expect(new.syncedTemplates.count == 0)
        for (port, client) in [(UInt16(6000), "192.168.1.12"), (6001, "192.168.1.13"), (6002, "192.168.1.12")] {
            let owner = old.connections(now: 2 * second).first { $0.clientPort == port }!.destinationAddress
            let (v, out) = new.run(FrameBuilder.ipv4TCP(src: client, sport: port, dst: "192.168.1.100", dport: 80, flags: TCPFlag.ack),
                                   at: 4 * second)
            #expect(v == .forward(interface: 2))
            #expect(out.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) } == (owner == IPAddress("192.168.1.31")! ? rs1MAC : rs2MAC))
        }
        // A new connection of a client follows its template (persistence survived).
        let owner13 = old.connections(now: 2 * second).first { $0.clientPort == 6001 }!.destinationAddress
        let (_, out) = new.syn(7000, from: "192.168.1.13", at: 5 * second)
        #expect(out.withUnsafeBytes { MACAddress(bytes: $0.baseAddress!) } == (owner13 == IPAddress("192.168.1.31")! ? rs1MAC : rs2MAC))
        #expect(new.dest("192.168.1.31").activeConns + new.dest("192.168.1.32").activeConns == 4)
    }

    /// Entries whose real server (or service) the new configuration no longer has are dropped and counted.
    @Test func entriesOfGoneDestinationsAreDroppedAndCounted() throws {
        let old = Self.busyEngine()
        let entries = try StateFile.decode(StateFile.encode(old.exportState(now: 2 * second))).get()
        let on32 = entries.filter { $0.destination == IPAddress("192.168.1.32")! }.count
        #expect(on32 > 0)
        let new = seedEngine(persistent: 360)
        try new.deleteDestination(vip, address: IPAddress("192.168.1.32")!, port: 80)
        let r = new.restoreState(entries, now: 3 * second)
        #expect(r.dropped == on32 && r.connections + r.templates == entries.count - on32)
        #expect(new.connections(now: 3 * second).allSatisfy { $0.destinationAddress == IPAddress("192.168.1.31")! })

        let none = seedEngine()
        try none.deleteService(vip)
        #expect(none.restoreState(entries, now: 3 * second).dropped == entries.count)
    }

    @Test func emptyTableRoundTrips() throws {
        let bytes = StateFile.encode(seedEngine().exportState(now: second))
        #expect(bytes.count == StateFile.headerLength + 3 * 4) // version 2: three empty sections, a 4-byte count each
        #expect(try StateFile.decode(bytes).get().isEmpty)
    }

    /// Every truncation is refused (the header's length, or the header itself, does not match).
    @Test func everyTruncationIsRefused() {
        let bytes = StateFile.encode(Self.busyEngine().exportState(now: 2 * second))
        for n in 0..<bytes.count {
            let r = StateFile.decode(Array(bytes[0..<n]))
            guard case .failure(let why) = r else { Issue.record("a \(n)-byte prefix was accepted"); continue }
            if n < StateFile.headerLength { #expect(why == .tooShort(n)) } else { #expect(why == .lengthMismatch(header: bytes.count - StateFile.headerLength, actual: n - StateFile.headerLength)) }
        }
    }

    /// Every single-bit flip anywhere in the file is refused: magic, version, reserved, count,
    /// length and checksum by the header's checks, the payload by its CRC-32.
    @Test func everyBitFlipIsRefused() {
        let bytes = StateFile.encode(Self.busyEngine().exportState(now: 2 * second))
        for i in 0..<bytes.count {
            for bit in 0..<8 {
                var b = bytes
                b[i] ^= UInt8(1 << bit)
                if case .success = StateFile.decode(b) { Issue.record("byte \(i) bit \(bit) flipped was accepted") }
            }
        }
    }

    /// Another format version (an older or newer lvsd's) is refused with its number.
    @Test func otherVersionsAreRefused() {
        var bytes = StateFile.encode(Self.busyEngine().exportState(now: 2 * second))
        for v: UInt16 in [0, StateFile.readableVersions.upperBound + 1, 0xFFFF] {
            bytes[StateFile.offsetVersion] = UInt8(v >> 8)
            bytes[StateFile.offsetVersion + 1] = UInt8(v & 0xFF)
            #expect(StateFile.decode(bytes) == .failure(.unsupportedVersion(v)))
        }
        #expect(StateFile.decode(Array("not a state file at all, really".utf8)) == .failure(.badMagic))
    }

    /// A consistent header and checksum around a payload that does not decode is still refused
    /// (a file written by a broken writer): the messages are checked one by one.
    @Test func wellFramedGarbageIsRefused() {
        var rng = SplitMix(seed: 16)
        for round in 0..<2000 {
            let payload = (0..<Int(rng.next() % 300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            var file = StateFile.magic
            StateFile.put16(&file, StateFile.currentVersion)
            StateFile.put16(&file, 0)
            StateFile.put32(&file, UInt32(rng.next() % 4))
            StateFile.put32(&file, UInt32(payload.count))
            StateFile.put32(&file, CRC32.checksum(payload))
            file += payload
            if !payload.isEmpty, case .success = StateFile.decode(file) { Issue.record("round \(round): garbage accepted") }
        }
    }

    /// Random mutations of a real file never crash the reader, and a mutated file either is
    /// refused or decodes to exactly the original entries.
    @Test func fuzzedFilesNeverCrash() throws {
        let bytes = StateFile.encode(Self.busyEngine().exportState(now: 2 * second))
        let original = try StateFile.decode(bytes).get()
        var rng = SplitMix(seed: 0x5EED)
        for _ in 0..<5000 {
            var b = bytes
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                switch rng.next() % 3 {
                case 0: b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next())
                case 1: b.removeLast(Int(rng.next() % UInt64(min(b.count, 40))))
                default: b += (0..<Int(rng.next() % 8)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                }
                if b.isEmpty { b = [0] }
            }
            if case .success(let got) = StateFile.decode(b) { #expect(got == original) }
        }
    }

    @Test func crc32MatchesTheStandardCheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
    }
}

/// A small deterministic generator for the fuzzed cases.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
