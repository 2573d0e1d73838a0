/// How `status` replies are paged: a reply carries at most ``maxFeatures`` features, sorted by name,
/// and a cursor to continue from. A status reply of a model with many features is thereby bounded
/// (about 200 bytes per feature, so about 200 KiB), whichever node answers or forwards it.
public enum StatusPaging {
    /// Features in one status reply: the default, and the most a node answers. 1,000.
    public static let maxFeatures = 1_000
}

extension Infranaut_V1_StatusRequest {
    /// The features to return in one reply: `max_features`, with 0 meaning (and the cap bounding it
    /// at) ``StatusPaging/maxFeatures``.
    public var featureLimit: Int {
        maxFeatures == 0 ? StatusPaging.maxFeatures : min(Int(maxFeatures), StatusPaging.maxFeatures)
    }
}
