import Monitoring
import Testing
import Wire

@testable import Actors

@Suite("what a spec makes of labelled rows")
struct ModelMonitorTests {
    @Test("binary at the spec's threshold (0.5 by default), multiclass over its classes only, regression")
    func performanceTaskFollowsTheSpec() {
        func task(_ build: (inout Infranaut_V1_ModelSpec) -> Void) -> PerformanceTask? {
            ModelMonitor.performanceTask(.with(build))
        }
        #expect(task { $0.task = .binaryClassification } == .binary(threshold: 0.5))
        #expect(
            task {
                $0.task = .binaryClassification
                $0.performance.threshold = 0.3
            } == .binary(threshold: 0.3))
        #expect(task { $0.task = .multiclassClassification } == nil)
        #expect(
            task {
                $0.task = .multiclassClassification
                $0.performance.classes = ["cat", "dog"]
            } == .multiclass(classes: ["cat", "dog"]))
        #expect(task { $0.task = .regression } == .regression)
        #expect(task { _ in } == nil)
    }
}
