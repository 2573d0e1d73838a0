internal import CNNG
import Dispatch
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
    /// How the first connection is made. Default ``RequestClientDial/background``.
    public var dial: RequestClientDial = .background

    public init() {}
}

/// How a ``RequestClient`` makes its first connection.
public enum RequestClientDial: Sendable {
    /// Dial in the background and keep retrying with back-off; a request to a server that is not
    /// up waits for it until the request's deadline. For peers, which come and go.
    case background
    /// The first request makes one connection attempt (name resolution included) and fails with
    /// its error if it fails: `.refused` when nothing listens, `.address` when the host does not
    /// resolve, `.timedOut` when the attempt outlasts the request's deadline. Once connected, a
    /// dropped connection is redialled in the background. For the CLI, where a user waits.
    case reportFirstAttempt
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
    private let registry = ExchangeRegistry()
    /// The dialer that the first request starts, with ``RequestClientDial/reportFirstAttempt``.
    private let firstDial: FirstDial?

    /// Creates a client for `address` (for example `tcp://127.0.0.1:7400`). A malformed address
    /// fails here. By default dialing happens in the background and a server that is not up yet is
    /// retried until a request's deadline; see ``RequestClientSettings/dial``.
    public init(dial address: String, settings: RequestClientSettings = RequestClientSettings()) throws(TransportError)
    {
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
            switch settings.dial {
            case .background:
                try check(nng_dialer_start(dialer, Int32(NNG_FLAG_NONBLOCK)), "dial \(address)")
                firstDial = nil
            case .reportFirstAttempt:
                firstDial = FirstDial(dialer: dialer, address: address)
            }
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
        if let firstDial {
            let remaining = deadline - ContinuousClock.now
            // The attempt blocks a thread of its own; the request stops waiting at its deadline, or
            // when its task is cancelled.
            let outcome = await withDeadline(remaining) { await firstDial.outcome() }
            guard let outcome else {
                let why =
                    Task.isCancelled
                    ? "the request was cancelled before a connection was made" : "no connection before the deadline"
                throw TransportError(.timedOut, operation: "dial \(address)", message: why)
            }
            if let outcome { throw outcome }
        }
        let registry = self.registry
        let exchange = Exchange(deadline: deadline, operation: operation, registry: registry)
        guard registry.register(exchange) else {
            throw TransportError(.closed, operation: operation, message: "the client is closed")
        }
        var ctx = nng_ctx()
        let rv = nng_ctx_open(&ctx, socket)
        if rv != 0 {
            registry.unregister(exchange)
            throw TransportError.from(rv, operation)!
        }
        guard exchange.attach(ctx) else {
            // close() ran between registering and opening: the context is ours to close.
            nng_ctx_close(ctx)
            registry.unregister(exchange)
            throw TransportError(.closed, operation: operation, message: "the client is closed")
        }
        let result = await withCheckedContinuation {
            (continuation: CheckedContinuation<Result<[UInt8], TransportError>, Never>) in
            exchange.start(request, continuation: continuation)
        }
        return try result.get()
    }

    /// Whether ``close()`` was called.
    public var isClosed: Bool { registry.isClosed }

    /// Closes the socket. Requests in flight fail with `.closed` at once. Safe to call more than
    /// once.
    ///
    /// nng (seen with 1.11) can touch a socket's memory after `nng_close` has freed it: when a
    /// context of that socket is closed at the same moment on another thread, and when its timeout
    /// thread is still cancelling an operation whose deadline fired (docs/transport.md, rule 4).
    /// So the socket is closed only after every request's operation has ended by itself (reply,
    /// error or deadline), its aio is freed (which waits for the timeout thread) and its context
    /// closed. The callers do not wait for that: they get `.closed` now. All of it runs on a
    /// thread of its own; the caller never blocks.
    public func close() {
        guard let (exchanges, latest) = registry.beginClose() else { return }
        let socket = self.socket
        let registry = self.registry
        for exchange in exchanges {
            exchange.abandon(TransportError(.closed, operation: "request", message: "the client was closed"))
        }
        detachOffPool("nng-close") {
            if registry.waitDrained(until: latest + .seconds(1)) {
                _ = nng_close(socket)
            }
            // Otherwise an operation has not ended a second past its deadline; leaking the socket
            // is safer than freeing it under nng's threads (see docs/transport.md).
        }
    }
}

/// The one synchronous connection attempt of a ``RequestClientDial/reportFirstAttempt`` client:
/// started by the first request, awaited by every request until it ends, its error kept.
private final class FirstDial: Sendable {
    private enum State {
        case notStarted
        case dialing([CheckedContinuation<TransportError?, Never>])
        case done(TransportError?)
    }
    private let state = Mutex(State.notStarted)
    private let dialer: nng_dialer
    private let address: String

    init(dialer: nng_dialer, address: String) {
        self.dialer = dialer
        self.address = address
    }

    /// Nil once connected, or the error of the attempt.
    func outcome() async -> TransportError? {
        await withCheckedContinuation { (continuation: CheckedContinuation<TransportError?, Never>) in
            let start = state.withLock { state -> Bool? in
                switch state {
                case .notStarted:
                    state = .dialing([continuation])
                    return true
                case .dialing(let waiting):
                    state = .dialing(waiting + [continuation])
                    return false
                case .done:
                    return nil
                }
            }
            switch start {
            case nil:
                let error = state.withLock { state -> TransportError? in
                    if case .done(let error) = state { return error }
                    return nil
                }
                continuation.resume(returning: error)
            case false?:
                break
            case true?:
                let dialer = self.dialer
                let operation = "dial \(address)"
                // Without NNG_FLAG_NONBLOCK nng_dialer_start blocks until the first attempt
                // (name resolution included) succeeds or fails: off the cooperative pool.
                detachOffPool("nng-dial") {
                    let error = TransportError.from(nng_dialer_start(dialer, 0), operation)
                    let waiting = self.state.withLock { state -> [CheckedContinuation<TransportError?, Never>] in
                        defer { state = .done(error) }
                        if case .dialing(let waiting) = state { return waiting }
                        return []
                    }
                    for continuation in waiting { continuation.resume(returning: error) }
                }
            }
        }
    }
}

/// The exchanges of one client that are in flight, so that ``RequestClient/close()`` can close
/// their contexts and wait for them before closing the socket.
private final class ExchangeRegistry: Sendable {
    private struct State {
        var closed = false
        var live: [ObjectIdentifier: Exchange] = [:]
        /// The latest deadline of any exchange registered: by then every operation has ended.
        var latest = ContinuousClock.now
    }
    private let state = Mutex(State())
    private let drained = DispatchSemaphore(value: 0)

    var isClosed: Bool { state.withLock { $0.closed } }

    /// Adds an exchange; false once the client is closed.
    func register(_ exchange: Exchange) -> Bool {
        state.withLock { state in
            guard !state.closed else { return false }
            state.live[ObjectIdentifier(exchange)] = exchange
            state.latest = max(state.latest, exchange.deadline)
            return true
        }
    }

    /// Removes a finished exchange (after its context is closed).
    func unregister(_ exchange: Exchange) {
        let signal = state.withLock { state -> Bool in
            state.live[ObjectIdentifier(exchange)] = nil
            return state.closed && state.live.isEmpty
        }
        if signal { drained.signal() }
    }

    /// Marks the client closed and returns the exchanges in flight and the latest deadline any
    /// exchange had; nil if it was closed already.
    func beginClose() -> ([Exchange], ContinuousClock.Instant)? {
        let result = state.withLock { state -> ([Exchange], ContinuousClock.Instant)? in
            guard !state.closed else { return nil }
            state.closed = true
            return (Array(state.live.values), state.latest)
        }
        if let result, result.0.isEmpty { drained.signal() }
        return result
    }

    /// Blocks the calling (dedicated) thread until no exchange is in flight, at most until `limit`.
    func waitDrained(until limit: ContinuousClock.Instant) -> Bool {
        if state.withLock({ $0.live.isEmpty }) { return true }
        let seconds = Double((limit - ContinuousClock.now).milliseconds) / 1000
        _ = drained.wait(timeout: .now() + max(0, seconds))
        return state.withLock { $0.live.isEmpty }
    }
}

/// One request's send-then-receive on its own context and aio.
private final class Exchange: @unchecked Sendable {
    // Safe: `receiving` is touched strictly in sequence (start, then the send callback, then the
    // receive callback); the context and the continuation are guarded by Mutexes because the
    // client's close may abandon the exchange from another thread.
    private enum Context { case notOpen, open(nng_ctx), closed }

    private let context = Mutex(Context.notOpen)
    /// An nng call on the context may still be returning when its callback already ran; the
    /// exchange leaves the registry (allowing the socket to close) only after both.
    private let progress = Mutex((calling: false, finished: false))
    let deadline: ContinuousClock.Instant
    private let operation: String
    private var receiving = false
    private let continuation = Mutex<CheckedContinuation<Result<[UInt8], TransportError>, Never>?>(nil)
    private let registry: ExchangeRegistry

    init(deadline: ContinuousClock.Instant, operation: String, registry: ExchangeRegistry) {
        self.deadline = deadline
        self.operation = operation
        self.registry = registry
    }

    /// Takes ownership of the opened context; false if the client closed meanwhile.
    func attach(_ ctx: nng_ctx) -> Bool {
        context.withLock { context in
            guard case .notOpen = context else { return false }
            context = .open(ctx)
            return true
        }
    }

    /// Answers the caller with `error` now; the operation on the wire ends by itself (its deadline
    /// bounds it) and only then is its aio freed and its context closed.
    func abandon(_ error: TransportError) { resume(.failure(error)) }

    /// Resumes the caller once, whoever comes first (the operation's end, or the client's close).
    private func resume(_ result: Result<[UInt8], TransportError>) {
        let waiting = continuation.withLock { c -> CheckedContinuation<Result<[UInt8], TransportError>, Never>? in
            defer { c = nil }
            return c
        }
        waiting?.resume(returning: result)
    }

    /// Closes the context once (the exchange finishing, or a failure before it started).
    func closeContext() {
        let ctx = context.withLock { context -> nng_ctx? in
            defer { context = .closed }
            if case .open(let ctx) = context { return ctx }
            return nil
        }
        if let ctx { nng_ctx_close(ctx) }
    }

    private var ctx: nng_ctx {
        context.withLock { context in
            if case .open(let ctx) = context { return ctx }
            return nng_ctx()  // closed: operations on the zero id fail with NNG_ECLOSED
        }
    }

    func start(_ request: [UInt8], continuation: CheckedContinuation<Result<[UInt8], TransportError>, Never>) {
        self.continuation.withLock { $0 = continuation }
        let box: AIOBox
        do throws(TransportError) {
            box = try AIOBox.make { box in self.completed(box) }
        } catch {
            return fail(error)
        }
        do throws(TransportError) {
            try box.setMessage(request)
        } catch {
            box.free()
            return fail(error)
        }
        guard setRemainingTimeout(box) else { return finish(box, .failure(timedOut())) }
        call { nng_ctx_send(ctx, box.aio) }
    }

    private func completed(_ box: AIOBox) {
        let rv = box.result
        if rv != 0 {
            if !receiving { box.discardMessage() }
            var error = TransportError.from(rv, operation)!
            if error.code == .timedOut {
                error = timedOut()
            } else if registry.isClosed {
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
        call { nng_ctx_recv(ctx, box.aio) }
    }

    private func setRemainingTimeout(_ box: AIOBox) -> Bool {
        let remaining = deadline - ContinuousClock.now
        guard remaining > .zero else { return false }
        box.setTimeout(remaining)
        return true
    }

    private func timedOut() -> TransportError {
        TransportError.timedOut(operation: operation)
    }

    private func call(_ body: () -> Void) {
        progress.withLock { $0.calling = true }
        body()
        let done = progress.withLock { progress -> Bool in
            progress.calling = false
            return progress.finished
        }
        if done { registry.unregister(self) }
    }

    private func fail(_ error: TransportError) {
        closeContext()
        resume(.failure(error))
        registry.unregister(self)
    }

    /// Answers the caller at once; then, once the aio is freed (which waits for nng's timeout
    /// thread to be done with it), closes the context and leaves the registry.
    private func finish(_ box: AIOBox, _ result: Result<[UInt8], TransportError>) {
        resume(result)
        box.freeAfterCallback {
            self.closeContext()
            let done = self.progress.withLock { progress -> Bool in
                progress.finished = true
                return !progress.calling
            }
            if done { self.registry.unregister(self) }
        }
    }
}
