internal import CNNG
import Dispatch
import Synchronization

/// Counts a socket's connections through nng's pipe notifications and keeps them within limits,
/// deciding as each arrives (`NNG_PIPE_EV_ADD_PRE`), before it can send a byte.
///
/// A connection is *vouched for* once it delivered a request the server accepted (on the peer
/// listener: one that proved the cluster secret). Connections not vouched for are the ones a
/// stranger can open; they get their own, smaller limit, and when either limit is reached a new
/// connection takes the place of the oldest one not vouched for. So connections that never send a
/// request (or never prove the secret) cannot lock out a peer or a client that will, and what they
/// can pin with partial frames is bounded by `maxUnvouched` × the size limit. Only when every
/// connection is vouched for is a new one refused.
final class ConnectionLimit: Sendable {
    private struct Pipe {
        var order: UInt64
        var vouched = false
    }

    private struct State {
        var open: [UInt32: Pipe] = [:]
        var unvouched = 0
        var nextOrder: UInt64 = 0
        var refused = 0
        var evicted = 0
    }

    private let max: Int
    private let maxUnvouched: Int
    private let state = Mutex(State())
    /// The retain that the C callbacks' `arg` holds until the socket is closed.
    private let retained = Mutex<Unmanaged<ConnectionLimit>?>(nil)
    /// Evictions close another pipe, which is not done from inside nng's pipe callback.
    private static let closer = DispatchQueue(label: "infranaut.connection-limit")

    init(max: Int, maxUnvouched: Int? = nil) {
        self.max = Swift.max(1, max)
        self.maxUnvouched = Swift.max(1, Swift.min(self.max, maxUnvouched ?? max))
    }

    var counts: (open: Int, refused: Int, evicted: Int) { state.withLock { ($0.open.count, $0.refused, $0.evicted) } }

    func register(on socket: nng_socket) throws(TransportError) {
        let unmanaged = Unmanaged.passRetained(self)
        retained.withLock { $0 = unmanaged }
        let callback: nng_pipe_cb = { pipe, event, arg in
            guard let arg else { return }
            Unmanaged<ConnectionLimit>.fromOpaque(arg).takeUnretainedValue().notify(pipe, event)
        }
        for event in [NNG_PIPE_EV_ADD_PRE, NNG_PIPE_EV_REM_POST] {
            try check(nng_pipe_notify(socket, event, callback, unmanaged.toOpaque()), "set pipe notification")
        }
    }

    /// Drops the callbacks' retain; only once the socket is closed (or was never opened).
    func release() {
        retained.withLock { retained in
            retained?.release()
            retained = nil
        }
    }

    /// The connection `id` delivered a request the server accepted.
    func vouch(for id: UInt32) {
        state.withLock { state in
            guard let pipe = state.open[id], !pipe.vouched else { return }
            state.open[id]?.vouched = true
            state.unvouched -= 1
        }
    }

    private enum Decision {
        case admit
        case refuse
        case admitEvicting(UInt32)
    }

    private func notify(_ pipe: nng_pipe, _ event: nng_pipe_ev) {
        let id = UInt32(bitPattern: nng_pipe_id(pipe))
        guard event == NNG_PIPE_EV_ADD_PRE else {
            // Also delivered for pipes refused in ADD_PRE or already evicted; those are not counted.
            state.withLock { state in
                if let gone = state.open.removeValue(forKey: id), !gone.vouched { state.unvouched -= 1 }
            }
            return
        }
        let decision = state.withLock { state -> Decision in
            var victim: UInt32?
            if state.open.count >= max || state.unvouched >= maxUnvouched {
                guard
                    let oldest = state.open.filter({ !$0.value.vouched }).min(by: { $0.value.order < $1.value.order })?
                        .key
                else {
                    state.refused += 1
                    return .refuse
                }
                state.open[oldest] = nil
                state.unvouched -= 1
                state.evicted += 1
                victim = oldest
            }
            state.nextOrder += 1
            state.open[id] = Pipe(order: state.nextOrder)
            state.unvouched += 1
            return victim.map { .admitEvicting($0) } ?? .admit
        }
        switch decision {
        case .admit:
            break
        case .refuse:
            // Allowed from the callback: nng then never adds the pipe to the socket.
            nng_pipe_close(pipe)
        case .admitEvicting(let victim):
            Self.closer.async { _ = nng_pipe_close(nng_pipe(id: victim)) }
        }
    }
}
