internal import CNNG
import Synchronization

/// Settings of a ``RequestClient``.
public struct RequestClientSettings: Sendable {
    /// Deadline of a request when the caller gives none. Default 10 s.
    public var defaultTimeout: Duration = .seconds(10)
    /// Largest reply accepted. Default 64 MiB.
    public var maxMessageBytes = 64 << 20
    /// Reconnect back-off bounds while the server is unreachable.
    public var reconnectMin: Duration = .milliseconds(50)
    public var reconnectMax: Duration = .seconds(1)

    public init() {}
}

/// A request client on an nng REQ socket, dialing one server address and reconnecting on its own.
///
/// Every request opens its own nng context and one aio that is used for the send and then for the
/// receive, strictly one after the other: a receive is never pending while the send on the same
/// context is, which sidesteps nng 1.5.2's crash when such a receive is cancelled or times out
/// (nng issue #1702). Deadlines are aio timeouts; nothing calls `nng_aio_cancel`. nng's timed
/// resend is disabled, so a request is normally delivered once per call; callers retry with
/// the same idempotency key. (nng's REQ protocol may still resend a request whose connection
/// dropped before the reply; the node's idempotency keys make that harmless.)
///
/// Cancelling the calling task does not abort a request already on the wire; it ends at its
/// deadline or when the client closes.
public final class RequestClient: Sendable {
    private let socket: nng_socket
    private let settings: RequestClientSettings
    public let address: String
    private let state = Mutex<(closed: Bool, inFlight: Int)>((false, 0))

    /// Creates a client for `address` (for example `tcp://127.0.0.1:7400`). Dialing happens in the
    /// background; a server that is not up yet is retried until a request's deadline.
    public init(dial address: String, settings: RequestClientSettings = RequestClientSettings()) throws(TransportError) {
        self.address = address
        self.settings = settings
        var socket = nng_socket()
        try check(nng_req0_open(&socket), "open req socket")
        do throws(TransportError) {
            try check(nng_socket_set_size(socket, NNG_OPT_RECVMAXSZ, settings.maxMessageBytes), "set recv-size-max")
            try check(nng_socket_set_ms(socket, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE), "disable resend")
            try check(
                nng_socket_set_ms(socket, NNG_OPT_RECONNMINT, nng_duration(settings.reconnectMin.milliseconds)),
                "set reconnect-time-min")
            try check(
                nng_socket_set_ms(socket, NNG_OPT_RECONNMAXT, nng_duration(settings.reconnectMax.milliseconds)),
                "set reconnect-time-max")
            var dialer = nng_dialer()
            try check(nng_dialer_create(&dialer, socket, address), "dial \(address)")
            try check(nng_dialer_set_bool(dialer, NNG_OPT_TCP_NODELAY, true), "set tcp-nodelay")
            try check(nng_dialer_start(dialer, Int32(NNG_FLAG_NONBLOCK)), "dial \(address)")
        } catch {
            nng_close(socket)
            throw error
        }
        self.socket = socket
    }

    deinit {
        close()
    }

    /// Sends `request` and returns the reply, or throws when `timeout` passes first.
    public func request(_ request: [UInt8], timeout: Duration? = nil) async throws(TransportError) -> [UInt8] {
        let deadline = ContinuousClock.now + (timeout ?? settings.defaultTimeout)
        let operation = "request to \(address)"
        let started = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.inFlight += 1
            return true
        }
        guard started else { throw TransportError(.closed, operation: operation, message: "the client is closed") }
        defer { state.withLock { $0.inFlight -= 1 } }

        var ctx = nng_ctx()
        try check(nng_ctx_open(&ctx, socket), operation)
        let exchange = Exchange(ctx: ctx, deadline: deadline, operation: operation) { [weak self] in
            self?.isClosed ?? true
        }
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<[UInt8], TransportError>, Never>) in
            exchange.start(request, continuation: continuation)
        }
        return try result.get()
    }

    /// Whether ``close()`` was called.
    public var isClosed: Bool { state.withLock { $0.closed } }

    /// Closes the socket. Requests in flight fail with `.closed`. Safe to call more than once.
    public func close() {
        let first = state.withLock { state -> Bool in
            defer { state.closed = true }
            return !state.closed
        }
        // nng_close waits for the contexts' callbacks; never block the caller's (pool) thread on it.
        if first {
            let socket = self.socket
            detachOffPool("nng-close") { _ = nng_close(socket) }
        }
    }
}

/// One request's send-then-receive on its own context and aio.
private final class Exchange: @unchecked Sendable {
    // Safe: strictly sequential; the send callback starts the receive, the receive callback ends it.
    private let ctx: nng_ctx
    private let deadline: ContinuousClock.Instant
    private let operation: String
    private var receiving = false
    private var continuation: CheckedContinuation<Result<[UInt8], TransportError>, Never>?
    private let clientClosed: @Sendable () -> Bool

    init(ctx: nng_ctx, deadline: ContinuousClock.Instant, operation: String, clientClosed: @escaping @Sendable () -> Bool) {
        self.ctx = ctx
        self.deadline = deadline
        self.operation = operation
        self.clientClosed = clientClosed
    }

    func start(_ request: [UInt8], continuation: CheckedContinuation<Result<[UInt8], TransportError>, Never>) {
        self.continuation = continuation
        let box: AIOBox
        do throws(TransportError) {
            box = try AIOBox.make { box in self.completed(box) }
        } catch {
            nng_ctx_close(ctx)
            continuation.resume(returning: .failure(error))
            return
        }
        do throws(TransportError) {
            try box.setMessage(request)
        } catch {
            nng_ctx_close(ctx)
            box.free()
            continuation.resume(returning: .failure(error))
            return
        }
        guard setRemainingTimeout(box) else { return finish(box, .failure(timedOut())) }
        nng_ctx_send(ctx, box.aio)
    }

    private func completed(_ box: AIOBox) {
        let rv = box.result
        if rv != 0 {
            if !receiving { box.discardMessage() }
            var error = TransportError.from(rv, operation)!
            if error.code == .timedOut {
                error = timedOut()
            } else if clientClosed() {
                // Closing the socket surfaces as ECLOSED or as a reset pipe depending on timing.
                error = TransportError(.closed, operation: operation, message: "the client was closed")
            }
            return finish(box, .failure(error))
        }
        if receiving {
            return finish(box, .success(box.takeMessageBytes()))
        }
        receiving = true
        guard setRemainingTimeout(box) else { return finish(box, .failure(timedOut())) }
        nng_ctx_recv(ctx, box.aio)
    }

    private func setRemainingTimeout(_ box: AIOBox) -> Bool {
        let remaining = deadline - ContinuousClock.now
        guard remaining > .zero else { return false }
        box.setTimeout(remaining)
        return true
    }

    private func timedOut() -> TransportError {
        TransportError(.timedOut, operation: operation, message: "no reply before the deadline (is the node running and reachable?)")
    }

    private func finish(_ box: AIOBox, _ result: Result<[UInt8], TransportError>) {
        nng_ctx_close(ctx)
        box.reap()
        continuation?.resume(returning: result)
        continuation = nil
    }
}
