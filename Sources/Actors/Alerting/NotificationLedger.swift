import Wire

/// What a coordinator knows for notifying (docs/alerting.md, "Notifications"): the cluster-wide
/// alert table, the alert changes people must hear of, which of those were notified through which
/// channel (by any coordinator), and the channels. A pure value fed with the events the
/// coordinator receives, in any order and any number of times: the same events give the same
/// ledger.
struct NotificationLedger {
    /// The newest change of each alert, by fingerprint.
    private(set) var alerts: [String: Infranaut_V1_AlertInfo] = [:]
    /// The alerts whose newest change is firing, by fingerprint: the ones repeats are owed for.
    private(set) var firing: [String: Infranaut_V1_AlertInfo] = [:]
    /// Changes still owed to some channel, by "fingerprint/sequence": firing ones, and resolved
    /// ones that fired.
    private(set) var changes: [String: Infranaut_V1_AlertInfo] = [:]
    /// "fingerprint/sequence/channel" of every notice sent (or given up on), by any coordinator.
    private(set) var notified: Set<String> = []
    /// Per "fingerprint/sequence/channel": the latest repeat recorded (one entry per firing change
    /// and channel, however many repeats were sent).
    private(set) var repeated: [String: Int] = [:]
    /// The newest apply of each channel name (deleted ones kept, so an older apply arriving late
    /// does not bring them back).
    private(set) var channels: [String: Infranaut_V1_NotificationChannel] = [:]
    /// The newest version of each silence, by id.
    private(set) var silences: [String: Infranaut_V1_Silence] = [:]

    /// Changes owed at most (a channel that stays unknown keeps its changes owed); beyond it the
    /// oldest go.
    static let maxChanges = 50_000

    static func key(_ info: Infranaut_V1_AlertInfo) -> String { "\(info.fingerprint)/\(info.sequence)" }
    static func key(_ info: Infranaut_V1_AlertInfo, channel: String) -> String { "\(key(info))/\(channel)" }

    /// How often a firing alert is notified again when its channel does not say.
    static let defaultRepeatIntervalMs: Int64 = 4 * 3_600_000

    mutating func absorb(_ event: Infranaut_V1_ClusterEvent) {
        switch event.kind {
        case ModelMonitor.alertEventKind:
            guard let info = try? Infranaut_V1_AlertInfo(serializedBytes: event.payload) else { return }
            if (alerts[info.fingerprint]?.sequence ?? 0) < info.sequence {
                alerts[info.fingerprint] = info
                firing[info.fingerprint] = info.state == .firing ? info : nil
            }
            if info.state == .firing || (info.state == .resolved && info.fired) {
                changes[Self.key(info)] = info
                settle(Self.key(info))
            }
            if changes.count > Self.maxChanges {
                let oldest = changes.values.sorted {
                    ($0.changedUnixMs, Self.key($0)) < ($1.changedUnixMs, Self.key($1))
                }
                for info in oldest.prefix(changes.count - Self.maxChanges) { changes[Self.key(info)] = nil }
            }
        case Self.notifiedKind:
            guard let record = try? Infranaut_V1_NotifiedRecord(serializedBytes: event.payload) else { return }
            let key = "\(record.fingerprint)/\(record.sequence)/\(record.channel)"
            if record.repetition == 0 {
                notified.insert(key)
            } else {
                repeated[key] = max(repeated[key] ?? 0, Int(record.repetition))
            }
            settle("\(record.fingerprint)/\(record.sequence)")
        case Self.silenceKind:
            guard let silence = try? Infranaut_V1_Silence(serializedBytes: event.payload) else { return }
            if let known = silences[silence.id], known.updatedUnixMs >= silence.updatedUnixMs { return }
            silences[silence.id] = silence
        case Self.channelKind:
            guard let channel = try? Infranaut_V1_NotificationChannel(serializedBytes: event.payload) else { return }
            if let known = channels[channel.name], known.appliedUnixMs > channel.appliedUnixMs { return }
            channels[channel.name] = channel
        default:
            return
        }
    }

    static let notifiedKind = "notified"
    static let channelKind = "channel"
    static let silenceKind = "silence"

    /// The silence that mutes `info` at `nowMs`, if any (the one ending last).
    func silence(muting info: Infranaut_V1_AlertInfo, nowMs: Int64) -> Infranaut_V1_Silence? {
        let labels = NotificationFormats.labels(info)
        return silences.values.filter { silence in
            silence.startsUnixMs <= nowMs && nowMs < silence.endsUnixMs && silence.modelID == info.modelID
                && (silence.rule.isEmpty || silence.rule == info.rule)
                && silence.matchers.allSatisfy { labels[$0.key] == $0.value }
        }.max { ($0.endsUnixMs, $0.id) < ($1.endsUnixMs, $1.id) }
    }

    mutating func markNotified(_ info: Infranaut_V1_AlertInfo, channel: String, repetition: Int = 0) {
        let key = Self.key(info, channel: channel)
        if repetition > 0 {
            repeated[key] = max(repeated[key] ?? 0, repetition)
            return
        }
        notified.insert(key)
        settle(Self.key(info))
    }

    /// Forgets a change once every channel it names has a record: `due()` looks at the changes
    /// still owed only, not at every one ever received.
    private mutating func settle(_ key: String) {
        guard let info = changes[key], info.notify.allSatisfy({ notified.contains("\(key)/\($0)") }) else { return }
        changes[key] = nil
    }

    /// One notification: the changes of one model's window, all firing or all resolved, for one
    /// channel.
    struct Notice {
        var channel: Infranaut_V1_NotificationChannel
        var alerts: [Infranaut_V1_AlertInfo]
        var firing: Bool
        /// The silence that mutes it: recorded, never sent.
        var silencedBy: String?
        /// 0 for the changes' own notice; k for the k-th repetition of firing changes.
        var repetition: Int = 0

        /// Stable for the same changes (and the same repetition): receivers drop a notice they already
        /// have by it.
        var dedupKey: String {
            alerts.map { Infranaut_V1_AlertInfo.dedupPart($0) }.sorted().joined(separator: ",") + "@" + channel.name
                + (repetition == 0 ? "" : "#\(repetition)")
        }
    }

    /// The channel's interval between repeats of a firing alert, or nil when it never repeats.
    static func repeatInterval(_ channel: Infranaut_V1_NotificationChannel) -> Int64? {
        if channel.noRepeat { return nil }
        return channel.repeatIntervalMs == 0
            ? defaultRepeatIntervalMs : Int64(clamping: channel.repeatIntervalMs)
    }

    /// The notices still owed at `nowMs`, oldest window first, the silenced ones apart. A change
    /// whose channel is unknown (or deleted) waits: the channel may be applied later.
    func due(nowMs: Int64) -> [Notice] {
        var groups: [String: Notice] = [:]
        func add(_ info: Infranaut_V1_AlertInfo, _ channel: Infranaut_V1_NotificationChannel, repetition: Int) {
            let muted = silence(muting: info, nowMs: nowMs)?.id
            let firing = info.state == .firing
            let group = [
                channel.name, info.modelID, "\(info.windowStartUnixMs)", "\(firing)", muted ?? "", "\(repetition)",
            ].joined(separator: "\u{0}")
            groups[
                group,
                default: Notice(channel: channel, alerts: [], firing: firing, silencedBy: muted, repetition: repetition)
            ].alerts.append(info)
        }
        for (_, info) in changes.sorted(by: { $0.key < $1.key }) {
            for name in info.notify where !notified.contains(Self.key(info, channel: name)) {
                guard let channel = channels[name], !channel.deleted else { continue }
                add(info, channel, repetition: 0)
            }
        }
        // Repeats: the k-th is due k intervals after the change fired, once its own notice is
        // recorded; a coordinator that was away for several intervals sends only the latest.
        for (_, info) in firing.sorted(by: { $0.key < $1.key }) {
            for name in info.notify where notified.contains(Self.key(info, channel: name)) {
                guard let channel = channels[name], !channel.deleted, let interval = Self.repeatInterval(channel),
                    interval > 0
                else { continue }
                let k = Int(clamping: (nowMs - info.changedUnixMs) / interval)
                guard k >= 1, k > repeated[Self.key(info, channel: name)] ?? 0 else { continue }
                add(info, channel, repetition: k)
            }
        }
        return groups.values.sorted {
            ($0.alerts[0].windowStartUnixMs, $0.channel.name, $0.alerts[0].modelID, $0.firing ? 0 : 1, $0.repetition)
                < (
                    $1.alerts[0].windowStartUnixMs, $1.channel.name, $1.alerts[0].modelID, $1.firing ? 0 : 1,
                    $1.repetition
                )
        }
    }
}

extension Infranaut_V1_AlertInfo {
    static func dedupPart(_ info: Infranaut_V1_AlertInfo) -> String { "\(info.fingerprint)/\(info.sequence)" }
}
