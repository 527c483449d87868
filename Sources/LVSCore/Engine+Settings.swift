import LVSModel

/// The kernel's run-time settings (`Sysctl`) as the engine keeps them: `EngineConfiguration` gives
/// the values at start, `settingWords` holds the live ones (relaxed atomics, written under the
/// lock by `setSysctls`, read by the packet path without it).
extension EngineConfiguration {
    /// The sysctls of this configuration.
    public var sysctlValues: SysctlValues {
        var v = SysctlValues()
        v[.amDroprate] = defense.amDropRate
        v[.amemthresh] = defense.amemthreshPercent
        v[.connReuseMode] = Int(connReuseMode)
        v[.dropEntry] = Int(defense.dropEntry.rawValue)
        v[.dropPacket] = Int(defense.dropPacket.rawValue)
        v[.expireNodestConn] = expireNodestConn ? 1 : 0
        v[.expireQuiescentTemplate] = expireQuiescentTemplate ? 1 : 0
        v[.secureTCP] = Int(defense.secureTCP.rawValue)
        v[.sloppySCTP] = sloppySCTP ? 1 : 0
        v[.sloppyTCP] = sloppyTCP ? 1 : 0
        v[.syncRefreshPeriod] = Int(syncRefreshPeriod)
        v[.syncRetries] = Int(syncRetries)
        return v
    }

    /// Sets one sysctl (its value already checked against `Sysctl.range`).
    public mutating func apply(_ a: SysctlAssignment) {
        let v = a.value
        switch a.setting {
        case .amDroprate: defense.amDropRate = v
        case .amemthresh: defense.amemthreshPercent = v
        case .connReuseMode: connReuseMode = UInt8(clamping: v)
        case .dropEntry: defense.dropEntry = DefenseMode(rawValue: UInt8(clamping: v)) ?? .off
        case .dropPacket: defense.dropPacket = DefenseMode(rawValue: UInt8(clamping: v)) ?? .off
        case .expireNodestConn: expireNodestConn = v != 0
        case .expireQuiescentTemplate: expireQuiescentTemplate = v != 0
        case .secureTCP: defense.secureTCP = DefenseMode(rawValue: UInt8(clamping: v)) ?? .off
        case .sloppySCTP: sloppySCTP = v != 0
        case .sloppyTCP: sloppyTCP = v != 0
        case .syncRefreshPeriod: syncRefreshPeriod = UInt32(clamping: v)
        case .syncRetries: syncRetries = UInt8(clamping: v)
        }
    }
}

extension Engine {
    /// The live value of `s` (relaxed atomic load; no lock).
    @inlinable @inline(__always) func setting(_ s: Sysctl) -> UInt64 { settingWords.load(s.rawValue) }

    @inline(__always) var expireNodestConn: Bool { setting(.expireNodestConn) != 0 }
    @inline(__always) var expireQuiescentTemplate: Bool { setting(.expireQuiescentTemplate) != 0 }
    @inline(__always) var connReuseMode: UInt8 { UInt8(truncatingIfNeeded: setting(.connReuseMode)) }
    @inline(__always) var sloppyTCP: Bool { setting(.sloppyTCP) != 0 }
    @inline(__always) var sloppySCTP: Bool { setting(.sloppySCTP) != 0 }

    /// The live drop_entry, drop_packet and secure_tcp modes, each one relaxed load (the new
    /// connection path reads these, not `defense`, which builds the whole configuration).
    @inline(__always) var dropEntryMode: DefenseMode { Self.defenseMode(setting(.dropEntry)) }
    @inline(__always) var dropPacketMode: DefenseMode { Self.defenseMode(setting(.dropPacket)) }
    @inline(__always) var secureTCPMode: DefenseMode { Self.defenseMode(setting(.secureTCP)) }
    @inline(__always) static func defenseMode(_ word: UInt64) -> DefenseMode {
        DefenseMode(rawValue: UInt8(truncatingIfNeeded: word)) ?? .off
    }

    /// The SYN-flood defence as it stands now: the live drop_entry, drop_packet, secure_tcp and
    /// am_droprate over the configuration's fixed parts.
    var defense: DefenseConfiguration {
        var d = configuration.defense
        d.dropEntry = dropEntryMode
        d.dropPacket = dropPacketMode
        d.secureTCP = secureTCPMode
        d.amDropRate = Int(setting(.amDroprate))
        return d
    }

    /// Every setting's live value.
    public var sysctls: SysctlValues {
        lock.withLock {
            var v = SysctlValues()
            for s in Sysctl.allCases { v[s] = Int(setting(s)) }
            return v
        }
    }

    /// Applies `assignments` as one change under the lock: all of them, or none when one names a
    /// setting fixed at start or a value out of range (the error names it). Connections are not
    /// touched; the next packet sees the new values.
    public func setSysctls(_ assignments: [SysctlAssignment]) throws(SysctlError) {
        for a in assignments {
            guard a.setting.settableAtRunTime else {
                throw SysctlError("\(a.setting.name): fixed at start (lvsd --set-sysctl or --settings)")
            }
            guard a.setting.range.contains(a.value) else {
                throw SysctlError("\(a.setting.name): invalid value `\(a.value)' (an integer from \(a.setting.range.lowerBound) to \(a.setting.range.upperBound))")
            }
        }
        lock.withLock {
            for a in assignments { settingWords.store(a.setting.rawValue, UInt64(a.value)) }
        }
    }
}

extension EngineShard {
    /// The SCTP chunk type of an ABORT (RFC 9260).
    static let sctpAbortChunk: UInt8 = 6
    /// The first chunk's type: after the 12-byte common header.
    static let sctpFirstChunkTypeOffset = 12

    /// Whether the first chunk of SCTP frame `f` is an ABORT (a truncated frame counts as one:
    /// sloppy_sctp never creates a connection from it).
    static func isSCTPAbort(_ frame: UnsafeMutableRawBufferPointer, _ f: ParsedFrame) -> Bool {
        let at = Int(f.l4Offset) + sctpFirstChunkTypeOffset
        guard at < frame.count else { return true }
        return frame[at] == sctpAbortChunk
    }
}
