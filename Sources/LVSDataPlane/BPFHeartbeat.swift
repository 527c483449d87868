import CLVSXDP
import LVSSystem

/// lvsd's heartbeat in its BPF programs' `heartbeat` map (bpf/lib/heartbeat.h): while it is
/// younger than the orphan timeout the programs claim the VIPs' frames; once older (lvsd killed,
/// hung, or gone with the programs left attached) they leave every frame to the kernel.
///
/// `@unchecked Sendable`: `program` is only read (its map descriptor), from the heartbeat thread;
/// the data plane that owns it stops that thread before it closes the program.
public final class BPFHeartbeat: @unchecked Sendable {
    private let program: XDPProgram

    /// nil when the program's object has no heartbeat map (an older --xdp-object).
    public init?(program: XDPProgram) {
        guard program.heartbeatMap >= 0 else { return nil }
        self.program = program
    }

    /// Writes a beat taken at `now` (CLOCK_MONOTONIC ns, `monotonicNanoseconds()`) with the
    /// timeout the programs compare it with (ns; 0: never orphaned).
    public func beat(now: UInt64, timeoutNanoseconds: UInt64) throws {
        try DataPlaneError.context("BPF heartbeat") {
            try syscallNegatedErrno("bpf_map_update_elem(heartbeat)") { clvs_heartbeat_set(program.heartbeatMap, now, timeoutNanoseconds) }
        }
    }
}

extension XDPProgram {
    /// The heartbeat map (shared by every interface's program), -1 when the object has none.
    public var heartbeatMap: Int32 { prog.pointee.heartbeat_fd }
}

extension DataPlaneBackend {
    public var heartbeat: BPFHeartbeat? { nil }
}

extension AFXDPDataPlane {
    /// The programs' shared heartbeat map.
    public var heartbeat: BPFHeartbeat? { programs.first.flatMap { BPFHeartbeat(program: $0) } }
}

extension TCDataPlane {
    /// The programs' shared heartbeat map.
    public var heartbeat: BPFHeartbeat? { programs.first.flatMap { BPFHeartbeat(program: $0) } }
}
