/// One thing wrong with a spec: where (a path such as `spec.features[3].type`, and the YAML line
/// when it is known) and what.
public struct SpecProblem: Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var line: Int?
    public var message: String

    public init(_ path: String, _ message: String, line: Int? = nil) {
        self.path = path
        self.message = message
        self.line = line
    }

    public var description: String {
        if let line { return "\(path) (line \(line)): \(message)" }
        return "\(path): \(message)"
    }
}
