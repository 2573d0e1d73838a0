import ArgumentParser

@main
struct Infranaut: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "infranaut",
        abstract: "Monitor machine-learning models in production: profiles, drift, data quality.",
        subcommands: [
            StartCommand.self, PushCommand.self, StatusCommand.self, DriftCommand.self, GenerateCommand.self,
            MembersCommand.self, RingCommand.self, LeaveCommand.self, DrillCommand.self, PublishEventCommand.self, EventsCommand.self,
        ]
    )
}
