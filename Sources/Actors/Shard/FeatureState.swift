import Foundation
public import Monitoring
public import Wire

/// The accumulated state of one feature of one model: its established type, its Monitoring
/// profile, and the values that did not fit the type.
///
/// Booleans are profiled as the categories `"true"` and `"false"`.
public struct FeatureState: Sendable {
    public enum Profile: Sendable {
        case numeric(NumericProfile)
        case categorical(CategoricalProfile)
    }

    public let name: String
    public let type: Infranaut_V1_FeatureType
    // Stored as two optionals (exactly one set) so that adding values mutates the profile in place;
    // mutating through an enum payload would copy the sketch on every batch.
    private var numeric: NumericProfile?
    private var categorical: CategoricalProfile?
    public internal(set) var typeMismatches: UInt64 = 0

    public var profile: Profile {
        if let numeric { return .numeric(numeric) }
        return .categorical(categorical ?? CategoricalProfile())
    }

    public init(name: String, type: Infranaut_V1_FeatureType) {
        self.name = name
        self.type = type
        if type == .double { numeric = NumericProfile() } else { categorical = CategoricalProfile() }
    }

    /// Counts `n` missing values (rows seen before the feature had a type).
    mutating func addMissing(_ n: UInt64) {
        if numeric != nil { numeric!.addMissing(n) } else { categorical!.addMissing(n) }
    }

    /// Adds a normalised column (already of this feature's type; see ``BatchNormalizer``).
    mutating func apply(_ column: Infranaut_V1_Column, mismatches: UInt64) {
        typeMismatches &+= mismatches
        switch column.values {
        case .doubles(let values)? where numeric != nil:
            numeric!.add(contentsOf: values.values)
        case .strings(let values)? where categorical != nil:
            let missing = MissingRows(values.missingRows, count: values.values.count)
            for (row, value) in values.values.enumerated() {
                if missing.contains(row) { categorical!.addMissing() } else { categorical!.add(value) }
            }
        case .bools(let values)? where categorical != nil:
            let missing = MissingRows(values.missingRows, count: values.values.count)
            var trues: UInt64 = 0
            var falses: UInt64 = 0
            for (row, value) in values.values.enumerated() where !missing.contains(row) {
                if value { trues += 1 } else { falses += 1 }
            }
            if trues > 0 { categorical!.add("true", weight: trues) }
            if falses > 0 { categorical!.add("false", weight: falses) }
            categorical!.addMissing(UInt64(Set(values.missingRows).count))
        default:
            // The normaliser guarantees the column's type; a mismatch here is a programming error.
            assertionFailure("column \(column.name) does not match feature type \(type)")
        }
    }

    /// The feature's figures as reported by `status`.
    public var status: Infranaut_V1_FeatureStatus {
        var status = Infranaut_V1_FeatureStatus()
        status.name = name
        status.type = type
        status.typeMismatches = typeMismatches
        switch profile {
        case .numeric(let numeric):
            let m = numeric.moments
            status.count = m.count
            status.missing = m.missing
            status.nonFinite = m.nonFinite
            if m.count > 0 {
                status.min = m.min
                status.max = m.max
                status.mean = m.mean
                status.variance = m.sampleVariance
                status.stdDev = m.sampleStandardDeviation
                let qs = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
                status.quantiles = zip(qs, numeric.sketch.quantiles(qs)).map { q, value in
                    .with {
                        $0.q = q
                        $0.value = value
                    }
                }
            }
        case .categorical(let categorical):
            status.count = categorical.count
            status.missing = categorical.missing
            status.distinctEstimate = categorical.distinct.estimate
            status.topValues = categorical.frequent.items.prefix(10).map { item in
                .with {
                    $0.value = item.item
                    $0.count = item.count
                }
            }
            if type == .bool { status.trueCount = categorical.frequent.count(of: "true") }
        }
        return status
    }

    /// The profile as Monitoring compares profiles (drift, quality).
    var columnProfile: ColumnProfile {
        switch profile {
        case .numeric(let numeric):
            ColumnProfile(name: name, content: .numeric(numeric), typeMismatches: typeMismatches)
        case .categorical(let categorical):
            ColumnProfile(name: name, content: .categorical(categorical), typeMismatches: typeMismatches)
        }
    }

    var snapshot: Infranaut_V1_FeatureSnapshot {
        .with {
            $0.name = name
            $0.type = type
            $0.typeMismatches = typeMismatches
            switch profile {
            case .numeric(let numeric): $0.profile = numeric.serializedBytes
            case .categorical(let categorical): $0.profile = categorical.serializedBytes
            }
        }
    }

    init(snapshot: Infranaut_V1_FeatureSnapshot) throws(ProfileDecodingError) {
        name = snapshot.name
        type = snapshot.type
        typeMismatches = snapshot.typeMismatches
        if snapshot.type == .double {
            numeric = try NumericProfile(serialized: snapshot.profile)
        } else {
            categorical = try CategoricalProfile(serialized: snapshot.profile)
        }
    }
}

extension NumericProfile {
    var serializedBytes: Foundation.Data { Data(serialized()) }
}

extension CategoricalProfile {
    var serializedBytes: Foundation.Data { Data(serialized()) }
}

/// Membership test for a column's `missing_rows` (small lists are scanned, large ones use a mask).
struct MissingRows {
    private var mask: [Bool]?
    private var list: [UInt32]

    init(_ rows: [UInt32], count: Int) {
        list = rows
        if rows.count > 8 {
            var mask = [Bool](repeating: false, count: count)
            for row in rows where Int(row) < count { mask[Int(row)] = true }
            self.mask = mask
        }
    }

    func contains(_ row: Int) -> Bool {
        if let mask { return mask[row] }
        return list.contains(UInt32(row))
    }
}
