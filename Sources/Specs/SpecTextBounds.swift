/// What a node checks of spec text from a client before YAML reads it (`apply_documents`): a few
/// hundred bytes of anchors and aliases can expand to 10⁹ nodes inside the YAML library, and deep
/// nesting makes its reader recurse, neither of which a request deadline can stop. Spec files
/// need neither, so the node refuses both (docs/protocol.md, "Applying spec files").
public enum SpecTextBounds {
    /// Nesting a line may start with (indentation, `- ` and `? ` markers) and flow brackets a
    /// document may hold open, at most.
    public static let maxIndent = 200
    public static let maxFlowDepth = 64

    /// The first reason `yaml` is refused, with its line, or nil. Anchors (`&name`) and aliases
    /// (`*name`) are recognised where a YAML node may start; inside quotes and comments they are
    /// text. A `&` or `*` that starts a word in the middle of a plain scalar is refused too, to be
    /// safe: quote such text.
    public static func problem(_ yaml: String) -> SpecProblem? {
        var depth = 0
        var lineNumber = 0
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let chars = Array(line.utf8)
            var indent = 0
            while indent < chars.count,
                chars[indent] == UInt8(ascii: " ")
                    || ((chars[indent] == UInt8(ascii: "-") || chars[indent] == UInt8(ascii: "?"))
                        && indent + 1 < chars.count && chars[indent + 1] == UInt8(ascii: " "))
            {
                indent += 1
            }
            if indent > maxIndent {
                return SpecProblem(
                    "file", "nested deeper than \(maxIndent) columns; a spec file needs far less", line: lineNumber)
            }
            var quote: UInt8? = nil
            var previous: UInt8 = UInt8(ascii: " ")
            var i = 0
            while i < chars.count {
                let c = chars[i]
                if let open = quote {
                    if c == UInt8(ascii: "\\") && open == UInt8(ascii: "\"") {
                        i += 2
                        continue
                    }
                    if c == open { quote = nil }
                    previous = c
                    i += 1
                    continue
                }
                let tokenStart =
                    previous == UInt8(ascii: " ") || previous == UInt8(ascii: "\t") || previous == UInt8(ascii: "[")
                    || previous == UInt8(ascii: "{") || previous == UInt8(ascii: ",")
                    || previous == UInt8(ascii: ":") || i == 0
                if c == UInt8(ascii: "#") && tokenStart { break }
                if tokenStart && (c == UInt8(ascii: "'") || c == UInt8(ascii: "\"")) {
                    quote = c
                } else if tokenStart && (c == UInt8(ascii: "&") || c == UInt8(ascii: "*")), i + 1 < chars.count,
                    chars[i + 1] != UInt8(ascii: " "), chars[i + 1] != UInt8(ascii: "\t")
                {
                    return SpecProblem(
                        "file",
                        "YAML anchors and aliases (&name, *name) are not accepted by the node; write the value out, or quote text that starts with & or *",
                        line: lineNumber)
                } else if c == UInt8(ascii: "[") || c == UInt8(ascii: "{") {
                    depth += 1
                    if depth > maxFlowDepth {
                        return SpecProblem(
                            "file", "brackets nested deeper than \(maxFlowDepth); a spec file needs far less",
                            line: lineNumber)
                    }
                } else if c == UInt8(ascii: "]") || c == UInt8(ascii: "}") {
                    depth = max(0, depth - 1)
                }
                previous = c
                i += 1
            }
        }
        return nil
    }
}
