internal import CNNG
import Synchronization

/// Counts a socket's connections through nng's pipe notifications and closes those beyond the
/// limit before they are added (`NNG_PIPE_EV_ADD_PRE`), so they never receive a byte.
final class ConnectionLimit: Sendable {
    private struct State {
        var open: Set<UInt32> = []
        var refused = 0
    }

    private let max: Int
    private let state = Mutex(State())
    /// The retain that the C callbacks' `arg` holds until the socket is closed.
    private let retained = Mutex<Unmanaged<ConnectionLimit>?>(nil)

    init(max: Int) {
        self.max = Swift.max(1, max)
    }

    var counts: (open: Int, refused: Int) { state.withLock { ($0.open.count, $0.refused) } }

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

    private func notify(_ pipe: nng_pipe, _ event: nng_pipe_ev) {
        let id = UInt32(bitPattern: nng_pipe_id(pipe))
        if event == NNG_PIPE_EV_ADD_PRE {
            let admitted = state.withLock { state -> Bool in
                guard state.open.count < max else {
                    state.refused += 1
                    return false
                }
                state.open.insert(id)
                return true
            }
            if !admitted {
                // Allowed from the callback: nng then never adds the pipe to the socket.
                nng_pipe_close(pipe)
            }
        } else {
            // Also delivered for pipes closed in ADD_PRE; those were never counted.
            state.withLock { _ = $0.open.remove(id) }
        }
    }
}
