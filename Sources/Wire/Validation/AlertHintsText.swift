import Foundation

extension Infranaut_V1_AlertHints {
    /// One line of what the hints say, for people: "roc_auc dropped; flagged: amount, merchant;
    /// errors in country=BR (lift 3.2)"; empty when they say nothing.
    public var text: String {
        var parts: [String] = []
        if hasPerformance, performance.dropped { parts.append("\(performance.metric) dropped") }
        let flagged = features.map { $0.name + ($0.drift ? "" : " (attribution)") }
        if !flagged.isEmpty { parts.append("flagged: " + flagged.joined(separator: ", ")) }
        if let s = segments.first {
            let value =
                switch s.kind {
                case .missing: "(missing)"
                case .other: "(other)"
                default: s.value
                }
            parts.append("errors in \(s.column)=\(value) (lift \(String(format: "%.1f", s.lift)))")
        }
        return parts.joined(separator: "; ")
    }
}
