internal import CNNG
import Dispatch

#if canImport(Glibc)
    import Glibc
#endif

/// Owns one `nng_aio` and forwards its completion callback to a Swift closure.
///
/// nng calls the completion callback on one of its own threads. The box is retained by an
/// `Unmanaged` reference for as long as the aio exists, and released by ``free()`` or
/// ``freeAfterCallback(then:)``.
/// The closure must not block: it copies what it needs and hands off to Swift concurrency.
final class AIOBox: @unchecked Sendable {
    // Safe: `aio` is written once in `make` before any operation starts; `onComplete` is only
    // replaced between operations by the single owner of the in-flight operation.
    private(set) var aio: OpaquePointer?
    var onComplete: (@Sendable (AIOBox) -> Void)?
    private let handles = HandleCount.current

    private init() {}

    static func make(_ onComplete: @escaping @Sendable (AIOBox) -> Void) throws(TransportError) -> AIOBox {
        let box = AIOBox()
        box.onComplete = onComplete
        let context = Unmanaged.passRetained(box).toOpaque()
        var aio: OpaquePointer?
        let rv = nng_aio_alloc(
            &aio,
            { raw in
                guard let raw else { return }
                let box = Unmanaged<AIOBox>.fromOpaque(raw).takeUnretainedValue()
                // The callback may drop the box's last retain (reap); keep it alive until we return.
                withExtendedLifetime(box) { box.onComplete?(box) }
            }, context)
        if rv != 0 {
            Unmanaged<AIOBox>.fromOpaque(context).release()
            throw TransportError.from(rv, "nng_aio_alloc")!
        }
        box.aio = aio
        box.handles?.opened()
        return box
    }

    var result: Int32 { nng_aio_result(aio) }

    /// Sets the timeout of the next operation. nng counts whole milliseconds on a clock that
    /// truncates, so a timeout of n ms can fire up to 1 ms before n ms have passed: the duration
    /// is rounded up and given one millisecond more, so that an operation never times out before
    /// its deadline (callers report "no reply before the deadline").
    func setTimeout(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let ms = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000 + 1
        nng_aio_set_timeout(aio, nng_duration(clamping: max(1, ms)))
    }

    func setInfiniteTimeout() {
        nng_aio_set_timeout(aio, NNG_DURATION_INFINITE)
    }

    /// Takes the received message out of the aio, copies its body and frees it.
    /// The id of the connection (nng pipe) the received message came in on; 0 when unknown.
    func receivedPipeID() -> UInt32 {
        guard let msg = nng_aio_get_msg(aio) else { return 0 }
        return UInt32(bitPattern: nng_pipe_id(nng_msg_get_pipe(msg)))
    }

    func takeMessageBytes() -> [UInt8] {
        guard let msg = nng_aio_get_msg(aio) else { return [] }
        nng_aio_set_msg(aio, nil)
        defer { nng_msg_free(msg) }
        let length = nng_msg_len(msg)
        guard length > 0, let body = nng_msg_body(msg) else { return [] }
        return Array(UnsafeRawBufferPointer(start: body, count: length))
    }

    /// Puts a message holding `bytes` into the aio for sending.
    func setMessage(_ bytes: [UInt8]) throws(TransportError) {
        var msg: OpaquePointer?
        try check(nng_msg_alloc(&msg, bytes.count), "nng_msg_alloc(\(bytes.count) bytes)")
        if !bytes.isEmpty, let body = nng_msg_body(msg) {
            bytes.withUnsafeBytes { body.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
        nng_aio_set_msg(aio, msg)
    }

    /// Frees a message left in the aio after a failed send (nng leaves ownership with the caller).
    func discardMessage() {
        if let msg = nng_aio_get_msg(aio) {
            nng_aio_set_msg(aio, nil)
            nng_msg_free(msg)
        }
    }

    /// Frees the aio, waiting for a running callback to finish. Never call it from the callback.
    func free() {
        guard let aio else { return }
        nng_aio_free(aio)
        self.aio = nil
        onComplete = nil
        handles?.released()
        Unmanaged.passUnretained(self).release()
    }

    /// Frees the aio from its own completion callback, on a thread of its own once the callback
    /// has returned, then calls `then`. Never calls back again.
    ///
    /// Why not `nng_aio_reap`: nng's timeout thread can still be inside the protocol's cancel
    /// function for this aio (its deadline fired as the operation completed) after the completion
    /// callback ran, holding a pointer to the socket's or context's mutex. Only `nng_aio_free`
    /// waits for that (nng marks the aio expiring; its teardown waits); reaping does not, so a
    /// socket closed right after could be freed under the timeout thread (seen as `panic:
    /// pthread_mutex_unlock: Invalid argument` from `nni_aio_expire_loop` when a peer died,
    /// docs/transport.md rule 4). Callers that close a socket wait for `then` of every aio of it.
    func freeAfterCallback(then: (@Sendable () -> Void)? = nil) {
        Self.freeing.async {
            self.free()
            then?()
        }
    }

    /// One serial queue frees every aio handed over by its callback: `nng_aio_free` waits for the
    /// callback to return, which it does promptly (callbacks never block).
    private static let freeing = DispatchQueue(label: "nng-aio-free")
}

extension Duration {
    /// This duration in whole milliseconds (rounded towards zero).
    public var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
