import Synchronization

/// Counts the nng handles (sockets, contexts, aios) that code running with it bound has opened and
/// not yet released: how the tests check that a start-up which failed half way, or a close,
/// released everything it opened. A task-local, so tests running in parallel see only their own.
///
/// Each object remembers the count that was bound when it was made and reports its handles' release
/// to that one, whichever thread releases them.
final class HandleCount: Sendable {
    @TaskLocal static var current: HandleCount?

    private let count = Atomic<Int>(0)

    init() {}

    /// Handles open now.
    var open: Int { count.load(ordering: .acquiring) }

    func opened(_ handles: Int = 1) { count.add(handles, ordering: .releasing) }

    func released(_ handles: Int = 1) { count.subtract(handles, ordering: .releasing) }
}
