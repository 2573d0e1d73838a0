import ArgumentParser

@main
struct InfranautBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infranaut-bench",
        abstract: "Release-mode benchmarks; figures go to docs/benchmarks.md with the command that made them.",
        subcommands: [
            IngestBench.self, BurstBench.self, PinBench.self, ProfileBench.self, IdleBench.self, PlacementBench.self,
            WindowBench.self, RetentionBench.self, WindowMemoryBench.self, EstimateBench.self, AlertBench.self,
        ]
    )
}
