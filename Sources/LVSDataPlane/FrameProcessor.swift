import LVSCore

/// What a data-plane worker hands every received frame to (the engine in lvsd, a test double in tests).
///
/// Workers are generic over the concrete type, so calls are statically dispatched.
public protocol FrameProcessor: AnyObject {
    /// `frame` is an Ethernet frame starting at the destination MAC, rewritable in place;
    /// `interface` the ingress interface index; `now` CLOCK_MONOTONIC in nanoseconds.
    func process(_ frame: UnsafeMutableRawBufferPointer, interface: Int32, now: UInt64) -> Verdict
    /// Batch hint, optional: a worker announces every frame of a batch with `prefetch`, then calls
    /// `prefetchDone`, before it `process`es them, so that their connection-table lookups overlap.
    func prefetch(_ frame: UnsafeRawBufferPointer)
    func prefetchDone()
    /// Called by each worker at least every `tickInterval` (also when idle), from the worker's thread.
    func tick(now: UInt64)
    /// Called by each worker after a pass over its rings that received frames (cheap when idle).
    func afterBatch(now: UInt64)
    /// What the kernel left undone in the next frame(s) to `process` (packet sockets' virtio-net
    /// header): the transport checksum to complete at `checksumStart + checksumOffset` (-1: none),
    /// and the segment size of a GSO frame (0: not one). Set before such a frame, reset after.
    func setReceiveOffloads(checksumStart: Int, checksumOffset: Int, gsoSize: Int)
}

extension FrameProcessor {
    public func prefetch(_ frame: UnsafeRawBufferPointer) {}
    public func prefetchDone() {}
    public func tick(now: UInt64) {}
    public func afterBatch(now: UInt64) {}
    public func setReceiveOffloads(checksumStart: Int, checksumOffset: Int, gsoSize: Int) {}
}
