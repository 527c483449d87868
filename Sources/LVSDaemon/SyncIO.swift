import CLVSShim  // MSG_DONTWAIT: see clvs_shim.h (a build may give Glibc's socket enum to the shim's module)
import Glibc
import LVSCore
import LVSDataPlane
import LVSSystem

/// The sync daemon's datagram I/O over a socket it is given: UDP multicast in lvsd (see
/// `SyncDaemons`' sockets), a socketpair(AF_UNIX, SOCK_DGRAM) in tests. The wire format and what
/// a datagram does to the engine stay in LVSCore (`Engine.takeSyncMessages`, `Engine.applySync`).
enum SyncIO {
    /// How long a receive waits for a datagram before the caller checks its stop flag again.
    static let receiveWaitMilliseconds: Int32 = 100
    /// Largest datagram read (a UDP payload).
    static let maxDatagram = 65536
    /// How often the master's thread sends what is ready.
    static let sendIntervalMilliseconds: Int32 = 20
    /// Datagrams the master reads per wake-up at most (a request flood waits in the socket
    /// buffer, and what overflows it is dropped by the kernel).
    static let requestsPerWake = 256

    /// The master: sends every finished message of `engine` on `socket`, to `destination` (the
    /// group and port), or on the connected socket when nil. Returns the messages sent whole.
    @discardableResult
    static func sendPending(_ engine: Engine, socket: Int32, to destination: RawSocketAddress?, now: UInt64) -> Int {
        var sent = 0
        for m in engine.takeSyncMessages(now: now) {
            let n = m.withUnsafeBytes { b -> Int in
                guard let destination else { return Glibc.send(socket, b.baseAddress, b.count, 0) }
                return destination.withSockaddr { sendto(socket, b.baseAddress, b.count, 0, $0, $1) }
            }
            if n == m.count { sent += 1 }
        }
        return sent
    }

    /// The backup: waits up to `waitMilliseconds` for one datagram on `socket` and applies it to
    /// `engine` (a malformed one is counted there and changes nothing). nil when none came.
    static func receiveOne(_ engine: Engine, socket: Int32, buffer: UnsafeMutableRawBufferPointer,
                           waitMilliseconds: Int32 = receiveWaitMilliseconds, now: () -> UInt64 = monotonicNanoseconds) -> SyncCounters? {
        var p = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, waitMilliseconds) > 0 else { return nil } // timeout, EINTR: check the stop flag
        let n = recv(socket, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
        guard n > 0 else { return nil }
        return engine.applySync(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), now: now())
    }

    /// The backup: sends a full-resync request for `syncID` (see `SyncProtocol.resyncRequest`).
    @discardableResult
    static func sendResyncRequest(socket: Int32, to destination: RawSocketAddress?, syncID: UInt8) -> Bool {
        let m = SyncProtocol.resyncRequest(syncID: syncID)
        let n = m.withUnsafeBytes { b -> Int in
            guard let destination else { return Glibc.send(socket, b.baseAddress, b.count, 0) }
            return destination.withSockaddr { sendto(socket, b.baseAddress, b.count, 0, $0, $1) }
        }
        return n == m.count
    }

    /// The master: waits up to `waitMilliseconds` for datagrams on its listening socket and hands
    /// each full-resync request to `engine` (other datagrams, a peer master's messages, are not
    /// its business). Returns the requests seen.
    @discardableResult
    static func receiveRequests(_ engine: Engine, socket: Int32, buffer: UnsafeMutableRawBufferPointer,
                                waitMilliseconds: Int32, now: () -> UInt64 = monotonicNanoseconds) -> Int {
        var p = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, waitMilliseconds) > 0 else { return 0 }
        var requests = 0
        for _ in 0..<requestsPerWake {
            let n = recv(socket, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT))
            guard n > 0 else { break }
            if let id = SyncProtocol.resyncRequestSyncID(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) {
                requests += 1
                engine.requestResync(syncID: id, now: now())
            }
        }
        return requests
    }
}
