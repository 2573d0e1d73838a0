internal import CNNG
public import Logging
public import ServiceLifecycle
import Synchronization

/// Settings of a ``RequestServer``.
public struct RequestServerSettings: Sendable {
    /// Requests served at the same time (one nng context each). Default 64.
    public var concurrency = 64
    /// Largest request nng will receive; bigger messages are dropped by nng and the connection
    /// closed. Keep it above the application's own limit so the application can answer an oversized
    /// request with a clear error instead. Default 160 MiB.
    public var maxMessageBytes = 160 << 20
    /// How long ``RequestServer/close(grace:)`` waits by default for requests being handled.
    public var shutdownGrace: Duration = .seconds(5)
    /// Connections kept at once; a connection beyond it is closed as it arrives. nng's size limit
    /// is per message and a message's buffer fills as its bytes arrive, so connections × limit
    /// bounds the memory that partial frames can pin. Default 1,024.
    public var maxConnections = 1_024
    /// Connections that have not yet delivered an accepted request (``RequestServer/Answer``'s
    /// `vouch`) kept at once; at either limit a new connection replaces the oldest of them.
    /// Default: no separate limit (`maxConnections`).
    public var maxUnvouchedConnections: Int?

    public init() {}
}

/// A request/reply server on an nng REP socket.
///
/// Each of `concurrency` nng contexts runs a loop: receive, hand the bytes to `handler` in a Swift
/// task, send its reply, receive again. No thread blocks on the socket: nng's completion callbacks
/// only copy bytes and start tasks.
///
/// Shutdown and nng 1.5.2: nothing here ever cancels an aio. ``close(grace:)`` waits for
/// handlers still running to send their replies, then closes the socket, which completes
/// every pending receive with `NNG_ECLOSED`; each context frees its aio only after that final
/// callback. (nng 1.5.2 can crash when an aio is cancelled or freed while a send on the same
/// context is pending, nng issue #1702; this design never does either.)
public final class RequestServer: Sendable {
    public typealias Handler = @Sendable ([UInt8]) async -> [UInt8]

    /// A reply, and whether the request vouches for its connection (see ``ConnectionLimit``).
    public struct Answer: Sendable {
        /// nil: no reply at all. The request is forgotten (the context receives the next one) and
        /// its client waits until its own deadline, as if the request had been lost on the way.
        public var reply: [UInt8]?
        public var vouch: Bool

        public init(reply: [UInt8]?, vouch: Bool) {
            self.reply = reply
            self.vouch = vouch
        }
    }

    public typealias VouchingHandler = @Sendable ([UInt8]) async -> Answer

    private let socket: nng_socket
    private let listener: nng_listener
    private let workers: [Worker]
    private let state: Mutex<State>
    /// Signalled when the last request in flight ends after ``close(grace:)`` began.
    private let idle = Wakeup()
    private let logger: Logger
    /// The address actually bound (with the real port when listening on port 0).
    public let boundAddress: String
    private let settings: RequestServerSettings
    private let connections: ConnectionLimit
    private let handles: HandleCount?

    private struct State {
        var closed = false
        var inFlight = 0
    }

    /// Listens on `address` (for example `tcp://127.0.0.1:7400`; port 0 picks a free port).
    public convenience init(
        listen address: String,
        settings: RequestServerSettings = RequestServerSettings(),
        logger: Logger,
        handler: @escaping Handler
    ) throws(TransportError) {
        try self.init(
            listen: address, settings: settings, logger: logger,
            vouchingHandler: { Answer(reply: await handler($0), vouch: true) })
    }

    /// Like ``init(listen:settings:logger:handler:)``; the handler also says whether the request
    /// vouches for the connection it came on.
    ///
    /// Everything that can fail (the socket, its contexts and their aios, then the listener) is
    /// opened before any operation starts, so a start-up that fails half way closes and frees what
    /// it opened without waiting on a callback.
    public init(
        listen address: String,
        settings: RequestServerSettings = RequestServerSettings(),
        logger: Logger,
        vouchingHandler handler: @escaping VouchingHandler
    ) throws(TransportError) {
        self.settings = settings
        self.logger = logger
        let handles = HandleCount.current
        self.handles = handles
        var socket = nng_socket()
        try check(nng_rep0_open(&socket), "open rep socket")
        handles?.opened()
        var listener = nng_listener()
        let connections = ConnectionLimit(max: settings.maxConnections, maxUnvouched: settings.maxUnvouchedConnections)
        self.connections = connections
        var workers: [Worker] = []
        do throws(TransportError) {
            try check(nng_socket_set_size(socket, NNG_OPT_RECVMAXSZ, settings.maxMessageBytes), "set recv-size-max")
            try connections.register(on: socket)
            for _ in 0..<max(1, settings.concurrency) {
                var ctx = nng_ctx()
                try check(nng_ctx_open(&ctx, socket), "open rep context")
                let worker = Worker(ctx: ctx)
                handles?.opened()
                workers.append(worker)
                try worker.allocate()
            }
            try check(nng_listener_create(&listener, socket, address), "listen \(address)")
            try check(nng_listener_set_bool(listener, NNG_OPT_TCP_NODELAY, true), "set tcp-nodelay")
            try check(nng_listener_start(listener, 0), "listen \(address)")
        } catch {
            // No operation was started on any context, so none of these calls waits on a callback.
            for worker in workers {
                nng_ctx_close(worker.ctx)
                handles?.released()
                worker.free()
            }
            nng_close(socket)
            handles?.released()
            connections.release()
            throw error
        }
        self.socket = socket
        self.listener = listener
        self.boundAddress = Self.resolveAddress(listener, requested: address)
        self.state = Mutex(State())
        self.workers = workers
        for worker in workers {
            worker.start(server: self, connections: connections, handler: handler)
        }
        logger.debug("listening", metadata: ["address": "\(boundAddress)", "contexts": "\(workers.count)"])
    }

    /// Requests being handled right now.
    public var inFlight: Int { state.withLock { $0.inFlight } }

    /// Connections open right now, connections refused, and connections closed to make room for
    /// a newer one, since the server started.
    public var connectionCounts: (open: Int, refused: Int, evicted: Int) { connections.counts }

    /// Waits up to `grace` for handlers that are running to reply, then closes the socket and frees
    /// every context. Safe to call more than once.
    ///
    /// The listener stays open while draining (closing an nng listener resets the connections it
    /// accepted, which would cut off the replies being waited for); requests that arrive meanwhile
    /// are still handled, so the application's handler should answer them with a retryable
    /// "shutting down" error once it begins to stop.
    public func close(grace: Duration? = nil) async {
        let first = state.withLock { state -> Bool in
            defer { state.closed = true }
            return !state.closed
        }
        guard first else { return }
        let deadline = ContinuousClock.now + (grace ?? settings.shutdownGrace)
        // A caller that is cancelled stops waiting for the handlers, not the close itself.
        while inFlight > 0, ContinuousClock.now < deadline, !Task.isCancelled {
            await idle.wait(until: deadline)
        }
        // Close the contexts first, then free the aios, then close the socket. Each context's
        // pending receive completes with NNG_ECLOSED and its worker stops; then its aio is freed,
        // which waits for nng's timeout thread to be done with it (a reply's send has a timeout),
        // and only then is the socket closed (docs/transport.md, rule 4). A worker whose handler is
        // still running (past the grace) stops when that handler's reply fails with NNG_ECLOSED:
        // waiting for the workers is waiting for every handler task too.
        let workers = self.workers
        let socket = self.socket
        let handles = self.handles
        let clean = await withBoundedWait(.seconds(5)) {
            await offPool("nng-ctx-close") {
                for worker in workers {
                    _ = nng_ctx_close(worker.ctx)
                    handles?.released()
                }
            }
            for worker in workers { await worker.waitStopped() }
            await offPool("nng-aio-free") { for worker in workers { worker.free() } }
            await offPool("nng-close") {
                _ = nng_close(socket)
                handles?.released()
            }
        }
        if clean {
            // No pipe callback can run once the socket is closed.
            connections.release()
        } else {
            // nng 1.5.2 can wedge inside nng_close (see docs/transport.md). Freeing the aios now
            // could let a late callback touch freed memory, so they are leaked instead.
            logger.warning(
                "nng did not finish closing the socket in time; leaving its resources",
                metadata: ["address": "\(boundAddress)"])
        }
        logger.debug("closed", metadata: ["address": "\(boundAddress)"])
    }

    fileprivate func beginRequest() {
        state.withLock { $0.inFlight += 1 }
    }

    fileprivate func endRequest() {
        let drained = state.withLock { state -> Bool in
            state.inFlight -= 1
            return state.inFlight == 0 && state.closed
        }
        if drained { idle.signal() }
    }

    private static func resolveAddress(_ listener: nng_listener, requested: String) -> String {
        var addr = nng_sockaddr()
        guard nng_listener_get_addr(listener, NNG_OPT_LOCADDR, &addr) == 0 else { return requested }
        guard addr.s_family == UInt16(NNG_AF_INET.rawValue) else { return requested }
        let port = UInt16(bigEndian: addr.s_in.sa_port)
        let ip = UInt32(bigEndian: addr.s_in.sa_addr)
        let host = "\(ip >> 24).\((ip >> 16) & 0xff).\((ip >> 8) & 0xff).\(ip & 0xff)"
        return "tcp://\(host):\(port)"
    }
}

/// One nng context's receive -> handle -> reply loop.
private final class Worker: @unchecked Sendable {
    // Safe: the loop is strictly sequential (one operation in flight per context), so `phase` is
    // only touched by the single callback or task that currently owns the context; `box`, `server`,
    // `connections` and `handler` are written before the first operation starts and after the last
    // callback ran; `stopped` is guarded by its Mutex.
    private enum Phase { case receiving, handling, sending }

    let ctx: nng_ctx
    private var box: AIOBox?
    private var phase: Phase = .receiving
    /// Set by `start`, before the first operation, and not changed after.
    private var server: RequestServer?
    private var connections: ConnectionLimit?
    private var handler: RequestServer.VouchingHandler?
    /// The worker is stopped once the final `NNG_ECLOSED` callback ran and no nng call on the
    /// context is still returning (the callback can run before the call that started the operation
    /// returns, and the socket must not close under that call).
    private struct StopState {
        var closedSeen = false
        var calling = false
        var done = false
        var waiters: [CheckedContinuation<Void, Never>] = []

        /// The waiters to resume if the worker just became stopped.
        mutating func settle() -> [CheckedContinuation<Void, Never>] {
            guard closedSeen, !calling, !done else { return [] }
            done = true
            defer { waiters = [] }
            return waiters
        }
    }
    private let stopped = Mutex(StopState())

    init(ctx: nng_ctx) { self.ctx = ctx }

    /// Allocates the aio; no operation starts until ``start(server:connections:handler:)``.
    func allocate() throws(TransportError) {
        box = try AIOBox.make { box in self.completed(box) }
    }

    func start(server: RequestServer, connections: ConnectionLimit, handler: @escaping RequestServer.VouchingHandler) {
        self.server = server
        self.connections = connections
        self.handler = handler
        receive()
    }

    private func receive() {
        guard let box else { return }
        phase = .receiving
        box.setInfiniteTimeout()
        call { nng_ctx_recv(ctx, box.aio) }
    }

    private func completed(_ box: AIOBox) {
        guard let server, let connections, let handler else {
            return assertionFailure("aio completed before the worker started")
        }
        let rv = box.result
        switch phase {
        case .receiving:
            guard rv == 0 else {
                if UInt32(rv) == NNG_ECLOSED.rawValue { return markStopped() }
                // A transient receive failure (for example a message over the size limit on one
                // pipe): keep serving.
                return receive()
            }
            let pipe = box.receivedPipeID()
            let request = box.takeMessageBytes()
            server.beginRequest()
            phase = .handling
            // A task per request, unstructured because nng's callback cannot await. It is still
            // awaited: the server's close() waits for every worker to stop, and a worker whose
            // handler is running stops only when that handler's reply is sent or fails, the last
            // thing its task does.
            Task {
                let answer = await handler(request)
                if answer.vouch { connections.vouch(for: pipe) }
                guard let reply = answer.reply else {
                    // Receiving again on a REP context drops the request it holds unanswered.
                    server.endRequest()
                    return self.receive()
                }
                self.send(reply, server: server)
            }
        case .sending:
            server.endRequest()
            if rv != 0 {
                box.discardMessage()
                if UInt32(rv) == NNG_ECLOSED.rawValue { return markStopped() }
            }
            receive()
        case .handling:
            assertionFailure("aio completed while no operation was pending")
        }
    }

    private func send(_ reply: [UInt8], server: RequestServer) {
        guard let box else { return }
        phase = .sending
        do throws(TransportError) {
            try box.setMessage(reply)
        } catch {
            // Out of memory for the reply: drop it; the client's deadline answers for us.
            server.endRequest()
            return receive()
        }
        box.setTimeout(.seconds(30))
        call { nng_ctx_send(ctx, box.aio) }
    }

    private func call(_ body: () -> Void) {
        stopped.withLock { $0.calling = true }
        body()
        let waiters = stopped.withLock { state in
            state.calling = false
            return state.settle()
        }
        waiters.forEach { $0.resume() }
    }

    private func markStopped() {
        let waiters = stopped.withLock { state in
            state.closedSeen = true
            return state.settle()
        }
        waiters.forEach { $0.resume() }
    }

    func waitStopped() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = stopped.withLock { state -> Bool in
                if !state.done { state.waiters.append(continuation) }
                return state.done
            }
            if done { continuation.resume() }
        }
    }

    /// Frees the aio once no callback can come any more (the worker stopped, or never started), and
    /// lets go of the server, which the worker kept alive while it ran.
    func free() {
        box?.free()
        box = nil
        server = nil
        connections = nil
        handler = nil
    }
}

extension RequestServer: Service {
    /// Serves until the service group shuts down gracefully (or the task is cancelled), then
    /// closes: waits up to `shutdownGrace` for the requests in flight, and closes the socket.
    public func run() async {
        try? await gracefulShutdown()
        await close()
    }
}
