/// How one model's traffic is cut into windows, and the bounds that keep its state small.
///
/// Durations are milliseconds of event time (or of the op log's processing time for
/// ``idleCloseMs``), because every replica must derive the same windows from the same ops.
public struct WindowSettings: Sendable, Hashable {
    /// Length of each tumbling window. Default 1 h.
    public var sizeMs: Int64
    /// How far behind the largest event time seen a row may arrive and still be counted.
    /// Default 10 min.
    public var latenessMs: Int64
    /// Columns whose values get windows of their own (besides the whole-model window).
    public var segmentColumns: [String]
    /// Values tracked per segment column, in order of first arrival; later values share the
    /// ``SegmentValue/other`` windows. Default 10.
    public var maxSegmentValues: Int
    /// Open (start, version) pairs per model; rows that would open one more are rejected and
    /// counted (``RejectedRows/windowLimit``). Default 16.
    public var maxOpenWindows: Int
    /// Rows whose event time is more than this ahead of the op's processing time are rejected
    /// and counted (``RejectedRows/future``): one bad clock must not close every window.
    /// Default 1 h.
    public var maxEventAheadMs: Int64
    /// Versions with a reference in progress or kept (first-rows and previous-window policies);
    /// the version seen longest ago is forgotten first. Default 8.
    public var maxReferenceVersions: Int
    /// Which baseline each window is compared with.
    public var reference: ReferencePolicy

    /// - Parameters:
    ///   - sizeMs: window length, at least 1 ms.
    ///   - latenessMs: allowed lateness, at least 0.
    public init(
        sizeMs: Int64 = 3_600_000, latenessMs: Int64 = 600_000, segmentColumns: [String] = [],
        maxSegmentValues: Int = 10, maxOpenWindows: Int = 16, maxEventAheadMs: Int64 = 3_600_000,
        maxReferenceVersions: Int = 8, reference: ReferencePolicy = .uploaded
    ) {
        precondition(sizeMs > 0 && latenessMs >= 0 && maxEventAheadMs >= 0, "window durations out of range")
        precondition(
            maxSegmentValues >= 0 && maxOpenWindows >= 1 && maxReferenceVersions >= 1, "window caps out of range")
        self.sizeMs = sizeMs
        self.latenessMs = latenessMs
        self.segmentColumns = segmentColumns
        self.maxSegmentValues = maxSegmentValues
        self.maxOpenWindows = maxOpenWindows
        self.maxEventAheadMs = maxEventAheadMs
        self.maxReferenceVersions = maxReferenceVersions
        self.reference = reference
    }

    /// Processing time without data after which open windows close: size + lateness.
    public var idleCloseMs: Int64 { sizeMs &+ latenessMs }

    /// Start of the window holding `eventTimeMs` (floor division, so negative times work too).
    public func windowStart(_ eventTimeMs: Int64) -> Int64 {
        let r = eventTimeMs % sizeMs
        return eventTimeMs - (r < 0 ? r + sizeMs : r)
    }
}

/// Which baseline a window is compared with.
public enum ReferencePolicy: Sendable, Hashable {
    /// A profile set uploaded for the version (``ModelWindows/setUploadedReference(_:version:)``).
    case uploaded
    /// The first `rows` rows of each series (version and segment), accumulated as they arrive.
    case firstRows(UInt64)
    /// The previous closed window of the same series.
    case previousWindow
}

/// The value of a segment column that a window holds.
public enum SegmentValue: Sendable, Hashable, Comparable {
    /// One of the first ``WindowSettings/maxSegmentValues`` values seen.
    case value(String)
    /// Rows where the segment column is missing.
    case missing
    /// Every value beyond the cap.
    case other
}

/// A segment: one value of one segment column.
public struct Segment: Sendable, Hashable, Comparable {
    public var column: String
    public var value: SegmentValue

    public init(column: String, value: SegmentValue) {
        self.column = column
        self.value = value
    }

    public static func < (a: Segment, b: Segment) -> Bool {
        a.column != b.column ? a.column < b.column : a.value < b.value
    }
}

/// A series of windows: one model version, for the whole model (`segment == nil`) or one segment.
public struct SeriesKey: Sendable, Hashable, Comparable {
    public var version: String
    public var segment: Segment?

    public init(version: String, segment: Segment? = nil) {
        self.version = version
        self.segment = segment
    }

    public static func < (a: SeriesKey, b: SeriesKey) -> Bool {
        if a.version != b.version { return a.version < b.version }
        switch (a.segment, b.segment) {
        case (nil, nil): return false
        case (nil, _): return true
        case (_, nil): return false
        case (let x?, let y?): return x < y
        }
    }
}

/// One window: a series and the window's start (its end is start + size).
public struct WindowKey: Sendable, Hashable, Comparable {
    public var startMs: Int64
    public var series: SeriesKey

    public init(startMs: Int64, series: SeriesKey) {
        self.startMs = startMs
        self.series = series
    }

    public var version: String { series.version }
    public var segment: Segment? { series.segment }

    /// Oldest first, then by series: the order results are returned and stored in.
    public static func < (a: WindowKey, b: WindowKey) -> Bool {
        a.startMs != b.startMs ? a.startMs < b.startMs : a.series < b.series
    }
}
