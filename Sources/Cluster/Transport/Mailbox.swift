internal import CNNG
import Synchronization

/// The receiving end of a one-way peer channel: an nng PULL socket that listens and yields every
/// message it receives as an async sequence.
///
/// One receive is pending at a time; its callback yields the bytes and arms the next one.
/// ``close()`` closes the socket (completing the pending receive with `NNG_ECLOSED`, which ends
/// ``messages``) and then frees the aio after that callback; no aio is ever cancelled.
public final class Mailbox: Sendable {
    private let socket: nng_socket
    private let box: Mutex<AIOBox?>
    private let closed = Mutex(false)
    /// Signalled once, by the receive that completes with `NNG_ECLOSED`.
    private let stopped: Wakeup
    /// Messages in arrival order. Ends when the mailbox closes.
    public let messages: AsyncStream<[UInt8]>
    public let boundAddress: String
    private let connections: ConnectionLimit
    private let handles: HandleCount?

    /// Listens on `address`; `bufferLimit` bounds messages received but not yet consumed (older
    /// ones are kept, newer ones dropped when full, as for any lossy peer channel). At most
    /// `maxConnections` senders are connected at once, so partial frames can pin at most
    /// `maxConnections × maxMessageBytes`.
    ///
    /// The aio is allocated before the listener starts, so a start-up that fails half way closes
    /// the socket and frees the aio without waiting on a callback.
    public init(
        listen address: String, maxMessageBytes: Int = 64 << 20, bufferLimit: Int = 10_000, maxConnections: Int = 1_024
    ) throws(TransportError) {
        let handles = HandleCount.current
        self.handles = handles
        var socket = nng_socket()
        try check(nng_pull0_open(&socket), "open pull socket")
        handles?.opened()
        var listener = nng_listener()
        let connections = ConnectionLimit(max: maxConnections)
        self.connections = connections
        let (messages, continuation) = AsyncStream.makeStream(
            of: [UInt8].self, bufferingPolicy: .bufferingOldest(bufferLimit))
        let stopped = Wakeup()
        var made: AIOBox?
        do throws(TransportError) {
            try check(nng_socket_set_size(socket, NNG_OPT_RECVMAXSZ, maxMessageBytes), "set recv-size-max")
            try connections.register(on: socket)
            made = try AIOBox.make { [socket] box in
                let rv = box.result
                if rv == 0 {
                    continuation.yield(box.takeMessageBytes())
                } else if UInt32(rv) == NNG_ECLOSED.rawValue {
                    continuation.finish()
                    stopped.signal()
                    return
                }
                nng_recv_aio(socket, box.aio)
            }
            try check(nng_listener_create(&listener, socket, address), "listen \(address)")
            try check(nng_listener_start(listener, 0), "listen \(address)")
        } catch {
            // No receive was started, so neither call waits on a callback.
            made?.free()
            nng_close(socket)
            handles?.released()
            connections.release()
            throw error
        }
        self.socket = socket
        self.messages = messages
        self.stopped = stopped
        var addr = nng_sockaddr()
        if nng_listener_get_addr(listener, NNG_OPT_LOCADDR, &addr) == 0, addr.s_family == UInt16(NNG_AF_INET.rawValue) {
            let ip = UInt32(bigEndian: addr.s_in.sa_addr)
            boundAddress =
                "tcp://\(ip >> 24).\((ip >> 16) & 0xff).\((ip >> 8) & 0xff).\(ip & 0xff):\(UInt16(bigEndian: addr.s_in.sa_port))"
        } else {
            boundAddress = address
        }
        box = Mutex(made)
        if let made {
            made.setInfiniteTimeout()
            nng_recv_aio(socket, made.aio)
        }
    }

    /// Closes the socket and ends ``messages``. Safe to call more than once.
    public func close() async {
        let first = closed.withLock { closed -> Bool in
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        let socket = self.socket
        let handles = self.handles
        let stopped = self.stopped
        // Bounded like RequestServer.close: a close that does not finish leaks the socket and its
        // aio instead of freeing memory a late callback could touch (docs/transport.md).
        let clean = await withBoundedWait(.seconds(5)) {
            await offPool("nng-close") {
                _ = nng_close(socket)
                handles?.released()
            }
            await stopped.wait(until: nil, honouringCancellation: false)
        }
        guard clean else { return }
        let made = box.withLock { box -> AIOBox? in
            defer { box = nil }
            return box
        }
        // nng_aio_free waits for a running callback: keep it off the pool too.
        if let made { await offPool("nng-aio-free") { made.free() } }
        connections.release()
    }
}

/// The sending end of a one-way peer channel: an nng PUSH socket dialing one mailbox.
///
/// Every posted send has a timeout and its own aio. The socket is closed only once every such aio
/// is freed (``AIOBox/freeAfterCallback(then:)``): nng's timeout thread may otherwise still be
/// cancelling a send inside the socket when `nng_close` frees it (docs/transport.md, rule 4).
/// ``close()`` therefore refuses new posts at once and closes the socket when the last one ends,
/// which its timeout bounds.
public final class MailboxSender: Sendable {
    private let socket: nng_socket
    private struct State {
        var closed = false
        var inFlight = 0
        var socketClosed = false
    }
    private let state = Mutex(State())
    public let address: String

    public init(dial address: String) throws(TransportError) {
        self.address = address
        var socket = nng_socket()
        try check(nng_push0_open(&socket), "open push socket")
        do throws(TransportError) {
            try check(nng_socket_set_ms(socket, NNG_OPT_RECONNMINT, 50), "set reconnect-time-min")
            try check(nng_socket_set_ms(socket, NNG_OPT_RECONNMAXT, 1000), "set reconnect-time-max")
            try check(nng_dial(socket, address, nil, Int32(NNG_FLAG_NONBLOCK)), "dial \(address)")
        } catch {
            nng_close(socket)
            throw error
        }
        self.socket = socket
    }

    deinit { close() }

    /// Queues `message` for the peer. Returns once nng accepted it for sending (delivery is not
    /// acknowledged: push/pull is for peer gossip, where the protocol above tolerates loss).
    public func send(_ message: [UInt8], timeout: Duration = .seconds(2)) async throws(TransportError) {
        let error = await withCheckedContinuation { (continuation: CheckedContinuation<TransportError?, Never>) in
            post(message, timeout: timeout) { continuation.resume(returning: $0) }
        }
        if let error { throw error }
    }

    /// Hands `message` to nng for sending and returns at once: nothing waits for the send, and its
    /// aio frees itself when the send completes. `completion`, if given, is called once with the
    /// outcome (nil when nng accepted the message), from nng's thread or from this call.
    public func post(
        _ message: [UInt8], timeout: Duration = .seconds(2), completion: (@Sendable (TransportError?) -> Void)? = nil
    ) {
        let operation = "send to \(address)"
        let admitted = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.inFlight += 1
            return true
        }
        guard admitted else {
            completion?(TransportError(.closed, operation: operation, message: "the sender is closed"))
            return
        }
        do throws(TransportError) {
            // The callback holds the sender until the send's aio is freed: releasing the last other
            // reference (closing its socket in deinit) must not cut off a message already posted.
            let box = try AIOBox.make { [self] box in
                let rv = box.result
                if rv != 0 { box.discardMessage() }
                completion?(TransportError.from(rv, operation))
                box.freeAfterCallback { self.ended() }
            }
            do throws(TransportError) {
                try box.setMessage(message)
            } catch {
                box.free()
                throw error
            }
            box.setTimeout(timeout)
            nng_send_aio(socket, box.aio)
        } catch {
            ended()
            completion?(error)
        }
    }

    /// A posted send's aio is freed (or it never started): the last one after ``close()`` closes
    /// the socket.
    private func ended() {
        let closeNow = state.withLock { state -> Bool in
            state.inFlight -= 1
            return takeSocketClose(&state)
        }
        if closeNow { closeSocket() }
    }

    /// Refuses new posts at once; closes the socket when no posted send's aio is left (at once,
    /// or when the last one's callback has run and its aio is freed; each send's timeout bounds
    /// that). Safe to call more than once.
    public func close() {
        let closeNow = state.withLock { state -> Bool in
            state.closed = true
            return takeSocketClose(&state)
        }
        if closeNow { closeSocket() }
    }

    /// Whether the socket is to be closed now (exactly once: closed and nothing in flight).
    private func takeSocketClose(_ state: inout State) -> Bool {
        guard state.closed, state.inFlight == 0, !state.socketClosed else { return false }
        state.socketClosed = true
        return true
    }

    private func closeSocket() {
        let socket = self.socket
        detachOffPool("nng-close") { _ = nng_close(socket) }
    }
}
