import Foundation
import SpectralXCheckpoint

/// What to import and where.
public struct ImportOptions: Sendable {
    /// The model store root (`models/`).
    public var storeRoot: URL
    public var domainName: String
    /// Backbone file name; nil = the backbone variant's name (`sat_mae_pp`).
    public var backboneName: String?
    /// Overrides the checkpoint's `hyper_parameters` wavelength list (µm).
    public var wavelengths: [Double]?
    public var classNames: [String]?
    /// Replace an existing domain of the same name.
    public var replaceDomain = false
    /// Record both files' SHA-256 in domain.json (one extra read of each file).
    public var recordFileDigests = false
    /// Check each storage entry's CRC-32 before its bytes are used.
    public var verifyCRC = true
    public var description: String?

    public init(storeRoot: URL, domainName: String) {
        self.storeRoot = storeRoot
        self.domainName = domainName
    }
}

/// A checkpoint validated against `StateDictLayout`: which tensor feeds which layout entry.
public struct ImportPlan: Sendable {
    public let layout: StateDictLayout
    /// Layout entries (state-dict order) with the checkpoint tensor that provides each.
    public let tensors: [(entry: StateDictEntry, source: TorchTensor)]
    /// Keys whose dtype is converted on the way (e.g. float16 → F32).
    public let convertedKeys: [String]
}

public struct ImportResult: Sendable {
    public let domainConfig: DomainConfig
    public let backboneURL: URL
    public let adapterURL: URL
    public let domainConfigURL: URL
    /// false when an existing backbone file with identical tensors was reused.
    public let backboneWritten: Bool
    public let backboneTensorCount: Int
    public let adapterTensorCount: Int
    public let convertedKeys: [String]
    public let seconds: Double
}

/// `spectralx import`: an upstream Lightning checkpoint → one backbone file + one domain directory.
public enum CheckpointImporter {
    public static let lightningPrefix = "model."
    static let bandsKey = StateDictLayout.bandsKey
    static let classesKey = StateDictLayout.classesKey
    static let vitHeadKey = "vit_backbone.head.weight"

    /// Strips `model.`, infers C, K and the backbone variant, and checks every key, shape and
    /// dtype against the layout; all problems are reported in one `layoutMismatch`.
    public static func plan(_ ckpt: TorchCheckpoint) throws(ImportError) -> ImportPlan {
        var byKey: [String: TorchTensor] = [:]
        var order: [String] = []
        for nt in try ckpt.stateDict() {
            let key = nt.key.hasPrefix(lightningPrefix) ? String(nt.key.dropFirst(lightningPrefix.count)) : nt.key
            guard byKey.updateValue(nt.tensor, forKey: key) == nil else { throw .checkpoint(.prefixCollision(key: key)) }
            order.append(key)
        }
        let hp = ckpt.hyperParameters ?? .none
        func hyperInt(_ name: String) -> Int? {
            ckpt.graph.find(key: name, in: hp).flatMap { $0.intValue }.map { Int($0) }
        }

        let bands: Int
        if let t = byKey[bandsKey], t.shape.count == 4 { bands = t.shape[1] } else if let c = hyperInt("in_channels") {
            bands = c
        } else {
            throw .cannotInferDimension(what: "band count", reason: "no '\(bandsKey)' and no hyper_parameters 'in_channels'")
        }
        let classes: Int
        if let t = byKey[classesKey], t.shape.count == 4 { classes = t.shape[0] } else if let k = hyperInt("num_classes") {
            classes = k
        } else {
            throw .cannotInferDimension(what: "class count", reason: "no '\(classesKey)' and no hyper_parameters 'num_classes'")
        }
        // SatMAE++ keeps the 1000-class ImageNet head; Scale-MAE's head has K classes.
        let named = ckpt.graph.find(key: "model", in: hp)?.stringValue.flatMap(BackboneVariant.init(rawValue:))
        var variant = named ?? .satMAEPP
        if let head = byKey[vitHeadKey], let rows = head.shape.first, rows != 1000 { variant = .scaleMAE }
        // DINOv3 (upernetSpectralX-DINOv3) is recognised from its register tokens / RoPE buffer.
        if byKey["vit_backbone.storage_tokens"] != nil || byKey["vit_backbone.rope_embed.periods"] != nil { variant = .dinov3 }

        let layout: StateDictLayout
        do { layout = try StateDictLayout(bands: bands, classes: classes, backbone: variant) } catch {
            throw .cannotInferDimension(what: "layout", reason: error.description)
        }
        var missing: [String] = [], mismatched: [KeyMismatch] = [], converted: [String] = []
        var tensors: [(entry: StateDictEntry, source: TorchTensor)] = []
        for e in layout.entries {
            guard let t = byKey[e.key] else { missing.append(e.key); continue }
            let floatEntry = e.dtype == .f32 || e.dtype == .bf16 || e.dtype == .f16 || e.dtype == .f64
            let typeOK = floatEntry ? t.dtype.isFloatingPoint : !t.dtype.isFloatingPoint
            if t.shape != e.shape || !typeOK {
                mismatched.append(KeyMismatch(key: e.key, expected: "\(e.dtype.rawValue) \(e.shape)",
                                              actual: "\(t.dtype.rawValue) \(t.shape)"))
                continue
            }
            if TensorGather.convert([], from: t.dtype, to: e.dtype) == nil {
                mismatched.append(KeyMismatch(key: e.key, expected: e.dtype.rawValue, actual: t.dtype.rawValue))
                continue
            }
            if !(t.dtype == .float32 && e.dtype == .f32) && !(t.dtype == .int64 && e.dtype == .i64) { converted.append(e.key) }
            tensors.append((e, t))
        }
        let known = Set(layout.entries.map(\.key))
        let unexpected = order.filter { !known.contains($0) }
        guard missing.isEmpty, unexpected.isEmpty, mismatched.isEmpty else {
            throw .layoutMismatch(missing: missing, unexpected: unexpected, mismatched: mismatched)
        }
        return ImportPlan(layout: layout, tensors: tensors, convertedKeys: converted)
    }

    /// The wavelength list: the option, else `wavelengths`/`wavelength` in `hyper_parameters`.
    public static func wavelengths(_ ckpt: TorchCheckpoint, override: [Double]?) throws(ImportError) -> [Double] {
        if let override { return override }
        let hp = ckpt.hyperParameters ?? .none
        for name in ["wavelengths", "wavelength"] {
            guard let v = ckpt.graph.find(key: name, in: hp), let items = ckpt.graph.sequence(v), !items.isEmpty else {
                continue
            }
            let values = items.compactMap(\.doubleValue)
            if values.count == items.count { return values }
        }
        throw .missingWavelengths
    }

    /// Imports a checkpoint file into the store.
    public static func importCheckpoint(at path: String, options: ImportOptions) throws(ImportError) -> ImportResult {
        try importCheckpoint(TorchCheckpoint(path: path), options: options)
    }

    public static func importCheckpoint(_ ckpt: TorchCheckpoint, options: ImportOptions) throws(ImportError) -> ImportResult {
        let t0 = Date()
        let plan = try plan(ckpt)
        let layout = plan.layout
        let backboneName = options.backboneName ?? layout.backbone.rawValue
        do {
            try ModelStoreLayout.validateName(options.domainName)
            try ModelStoreLayout.validateName(backboneName)
        } catch { throw .checkpoint(error) }
        let wl = try wavelengths(ckpt, override: options.wavelengths)
        var classNames = options.classNames
        if classNames == nil, let v = ckpt.graph.find(key: "class_names", in: ckpt.hyperParameters ?? .none),
           let items = ckpt.graph.sequence(v)
        {
            let names = items.compactMap(\.stringValue)
            if names.count == items.count, names.count == layout.classes { classNames = names }
        }
        let source = URL(fileURLWithPath: ckpt.path).lastPathComponent
        var details: [String] = []
        if let e = ckpt.epoch { details.append("epoch \(e)") }
        if let s = ckpt.globalStep { details.append("global_step \(s)") }
        let config = DomainConfig(
            name: options.domainName, backbone: backboneName, backboneVariant: layout.backbone, bands: layout.bands,
            classes: layout.classes, classNames: classNames, wavelengths: wl,
            description: options.description
                ?? "imported from \(source)" + (details.isEmpty ? "" : " (\(details.joined(separator: ", ")))"))
        do { try config.validate() } catch { throw .checkpoint(error) }

        let store = ModelStoreLayout(root: options.storeRoot)
        let fm = FileManager.default
        if !options.replaceDomain,
           fm.fileExists(atPath: store.domainConfigURL(options.domainName).path)
            || fm.fileExists(atPath: store.adapterURL(options.domainName).path)
        {
            throw .domainExists(options.domainName)
        }
        if options.verifyCRC {
            var checked = Set<PickleRef>()
            for (_, t) in plan.tensors where checked.insert(t.storage).inserted {
                _ = try ckpt.storageBytes(t, verifyCRC: true)
            }
        }
        do {
            try fm.createDirectory(at: store.backbonesDirectory, withIntermediateDirectories: true)
            try fm.createDirectory(at: store.domainDirectory(options.domainName), withIntermediateDirectories: true)
        } catch { throw .io("cannot create the store directories: \(error.localizedDescription)") }

        let backbonePart = plan.tensors.filter { $0.entry.file == .backbone }
        let adapterPart = plan.tensors.filter { $0.entry.file == .domain }
        let backboneURL = store.backboneURL(backboneName)
        var backboneWritten = false
        if fm.fileExists(atPath: backboneURL.path) {
            try requireIdentical(backboneURL, backboneName: backboneName, part: backbonePart, ckpt: ckpt)
        } else {
            var metadata: [(key: String, value: String)] = [("format", "pt"), ("file", WeightFile.backbone.rawValue),
                                                            ("backbone", layout.backbone.rawValue), ("source", "spectralx import")]
            if layout.backbone.kind != .vitL {
                metadata.append((BackboneConfiguration.metadataKey, BackboneConfiguration.standard(layout.backbone.kind).jsonString()))
            }
            try write(backbonePart, to: backboneURL, ckpt: ckpt, metadata: metadata)
            backboneWritten = true
        }
        var adapterMetadata: [(key: String, value: String)] = [
            ("format", "pt"), ("file", WeightFile.domain.rawValue), ("source", "spectralx import"), ("checkpoint", source),
        ]
        if let e = ckpt.epoch { adapterMetadata.append(("epoch", String(e))) }
        if let s = ckpt.globalStep { adapterMetadata.append(("global_step", String(s))) }
        try write(adapterPart, to: store.adapterURL(options.domainName), ckpt: ckpt, metadata: adapterMetadata)

        var final = config
        do {
            if options.recordFileDigests {
                final.backboneSHA256 = try ModelStoreLayout.fileSHA256(backboneURL).hex
                final.adapterSHA256 = try ModelStoreLayout.fileSHA256(store.adapterURL(options.domainName)).hex
            }
            try final.write(to: store.domainConfigURL(options.domainName))
        } catch let e as CheckpointError {
            throw .checkpoint(e)
        } catch {
            throw .io("cannot write domain.json: \(error)")
        }
        return ImportResult(domainConfig: final, backboneURL: backboneURL, adapterURL: store.adapterURL(options.domainName),
                            domainConfigURL: store.domainConfigURL(options.domainName), backboneWritten: backboneWritten,
                            backboneTensorCount: backbonePart.count, adapterTensorCount: adapterPart.count,
                            convertedKeys: plan.convertedKeys, seconds: Date().timeIntervalSince(t0))
    }

    // MARK: - writing

    /// The bytes a tensor is stored as: C order, converted to the layout dtype.
    static func storedBytes(_ t: TorchTensor, as dtype: SafeTensorsDType, ckpt: TorchCheckpoint) throws(ImportError) -> [UInt8] {
        let raw = try ckpt.contiguousBytes(t)
        guard let b = TensorGather.convert(raw, from: t.dtype, to: dtype) else {
            throw .invalidTensor(reason: "cannot convert \(t.dtype.rawValue) to \(dtype.rawValue)")
        }
        return b
    }

    /// Whether the stored bytes can be copied straight out of the archive.
    static func isDirect(_ t: TorchTensor, _ dtype: SafeTensorsDType) -> Bool {
        t.isContiguous && ((t.dtype == .float32 && dtype == .f32) || (t.dtype == .int64 && dtype == .i64))
    }

    static func write(_ part: [(entry: StateDictEntry, source: TorchTensor)], to url: URL, ckpt: TorchCheckpoint,
                      metadata: [(key: String, value: String)]) throws(ImportError)
    {
        do {
            let tensors = try part.map { p throws(CheckpointError) in
                try SafeTensorsWriter.Tensor(name: p.entry.key, dtype: p.entry.dtype, shape: p.entry.shape)
            }
            let writer = try SafeTensorsWriter(tensors: tensors, metadata: metadata)
            var cached: (index: Int, bytes: [UInt8])?
            try writer.write(to: url, hashTensors: false) { i, offset, buffer in
                let (e, t) = part[i]
                if isDirect(t, e.dtype) {
                    let src = try ckpt.storageBytes(t)
                    let start = t.storageOffset * t.dtype.itemSize + offset
                    buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[start..<(start + buffer.count)]))
                    return
                }
                if cached?.index != i { cached = (i, try storedBytes(t, as: e.dtype, ckpt: ckpt)) }
                cached!.bytes.withUnsafeBytes { b in
                    buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: b[offset..<(offset + buffer.count)]))
                }
            }
        } catch let e as ImportError {
            throw e
        } catch let e as CheckpointError {
            throw .checkpoint(e)
        } catch {
            throw .io("cannot write \(url.path): \(error)")
        }
    }

    /// An existing backbone file may be reused only if it holds exactly these tensors with the
    /// same bytes (metadata may differ: a synthesized or earlier-imported backbone is fine).
    static func requireIdentical(_ url: URL, backboneName: String,
                                 part: [(entry: StateDictEntry, source: TorchTensor)], ckpt: TorchCheckpoint) throws(ImportError)
    {
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(url: url) } catch {
            throw .backboneConflict(name: backboneName, reason: "existing file is unreadable: \(error)")
        }
        guard file.entries.count == part.count else {
            throw .backboneConflict(name: backboneName, reason: "it has \(file.entries.count) tensors, the checkpoint \(part.count)")
        }
        for (e, t) in part {
            guard let fe = file.entry(named: e.key), fe.dtype == e.dtype, fe.shape == e.shape else {
                throw .backboneConflict(name: backboneName, reason: "tensor '\(e.key)' is absent or differently shaped")
            }
            let existing = file.rawBytes(of: fe)
            let same: Bool
            if isDirect(t, e.dtype) {
                let src = try ckpt.storageBytes(t)
                let start = t.storageOffset * t.dtype.itemSize
                same = existing.count == fe.byteRange.count
                    && memcmp(existing.baseAddress!, src.baseAddress! + start, existing.count) == 0
            } else {
                let mine = try storedBytes(t, as: e.dtype, ckpt: ckpt)
                same = mine.elementsEqual(existing)
            }
            guard same else { throw .backboneConflict(name: backboneName, reason: "tensor '\(e.key)' differs") }
        }
    }
}
