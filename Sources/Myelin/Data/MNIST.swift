import Foundation

/// MNIST-family data sets (MNIST, Fashion-MNIST): IDX files `train-images-idx3-ubyte[.gz]`,
/// `train-labels-idx1-ubyte[.gz]`, `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]` in one folder.
///
/// ```swift
/// let (train, validation) = try MNIST.loadTrainValidation(directory: MNIST.fashionDirectory, validationCount: 6000, seed: 1)
/// let test = try MNIST.load(directory: MNIST.fashionDirectory, split: .test)
/// print(test.features.shape, test.targets.shape)   // [10000, 784] [10000]
/// ```
public enum MNIST {
    /// Where Debian's `dataset-fashion-mnist` package puts Fashion-MNIST.
    public static let fashionDirectory = URL(fileURLWithPath: "/usr/share/datasets/fashion-mnist")

    /// Fashion-MNIST's ten classes, by label number.
    public static let fashionClassNames = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

    /// The training (60000 images) or test (10000 images) part.
    public enum Split: String, Sendable {
        /// `train-images-idx3-ubyte` and `train-labels-idx1-ubyte`.
        case train = "train"
        /// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`.
        case test = "t10k"
    }

    /// The image and label files of a split: the gzip file when present, else the raw one (errors name the gzip
    /// name when neither exists).
    public static func files(in directory: URL, split: Split) -> (images: URL, labels: URL) {
        func pick(_ base: String) -> URL {
            let gz = directory.appendingPathComponent(base + ".gz")
            let raw = directory.appendingPathComponent(base)
            if FileManager.default.fileExists(atPath: gz.path) { return gz }
            return FileManager.default.fileExists(atPath: raw.path) ? raw : gz
        }
        return (pick("\(split.rawValue)-images-idx3-ubyte"), pick("\(split.rawValue)-labels-idx1-ubyte"))
    }

    /// Reads and checks a split's two files: images [N, rows, cols] (float images without NaN or infinite
    /// values, unless `nonFinite` replaces them), labels [N], each a whole number in 0..<classes. Errors name the
    /// file, the image (or label) index and the value.
    public static func readSplit(directory: URL, split: Split, classes: Int = 10,
                                 nonFinite: NonFiniteValues = .refuse) throws -> (images: IDXArray, labels: IDXArray, imagesFile: String, labelsFile: String) {
        let (imagesURL, labelsURL) = files(in: directory, split: split)
        var images = try IDX.read(imagesURL)
        let labels = try IDX.read(labelsURL)
        guard images.shape.count == 3 else {
            throw DataError.invalid(imagesURL.path, reason: "expected images [count, rows, columns], found dimensions \(images.shape)")
        }
        // With a count of 0 the file holds no pixels whatever rows and columns say: bound them here.
        let (pixels, overflow) = images.shape[1].multipliedReportingOverflow(by: images.shape[2])
        guard !overflow, pixels <= Int(Int32.max) else {
            throw DataError.invalid(imagesURL.path, reason: "images of \(images.shape[1])×\(images.shape[2]) pixels are too large")
        }
        guard labels.shape.count == 1 else {
            throw DataError.invalid(labelsURL.path, reason: "expected labels [count], found dimensions \(labels.shape)")
        }
        guard images.count == labels.count else {
            throw DataError.countMismatch(imagesURL.path, labelsURL.path, images.count, labels.count)
        }
        let values = labels.floats()
        if let i = values.firstIndex(where: { v in Int(exactly: v).map { !(0..<classes).contains($0) } ?? true }) {
            throw DataError.invalid(labelsURL.path, reason: "label \(i) is \(values[i]), expected a whole number in 0..<\(classes)")
        }
        images = try images.checkedFinite(nonFinite, source: imagesURL.path)
        return (images, labels, imagesURL.path, labelsURL.path)
    }

    /// One split as a data set on `device`: features [N, rows·cols] (or [N, rows, cols] when `flatten` is false)
    /// scaled to [0, 1], targets [N] class numbers. `limit` keeps the first samples only. Byte images stay
    /// bytes on the host (a quarter of the memory of Float) and are converted batch by batch. Float images with
    /// NaN or infinite values are refused, naming the file, the image and the pixel, unless `nonFinite` replaces them.
    public static func load(directory: URL = fashionDirectory, split: Split, limit: Int? = nil, flatten: Bool = true,
                            nonFinite: NonFiniteValues = .refuse, on device: Device = .default) throws -> Dataset {
        let s = try readSplit(directory: directory, split: split, nonFinite: nonFinite)
        let rows = Array(0..<Swift.min(limit ?? s.images.count, s.images.count))
        return makeDataset(s.images, s.labels, rows: rows, flatten: flatten, on: device)
    }

    /// The training split divided into a training and a validation part (`validationCount` samples chosen by a
    /// seeded shuffle), targets on `device`, byte images kept as bytes like `load`'s. `limit` keeps the first
    /// samples of the file only. Non-finite float pixels are handled as `load` says.
    public static func loadTrainValidation(directory: URL = fashionDirectory, validationCount: Int, seed: UInt64,
                                           limit: Int? = nil, flatten: Bool = true, nonFinite: NonFiniteValues = .refuse,
                                           on device: Device = .default) throws -> (train: Dataset, validation: Dataset) {
        let s = try readSplit(directory: directory, split: .train, nonFinite: nonFinite)
        let n = Swift.min(limit ?? s.images.count, s.images.count)
        guard validationCount >= 0, validationCount < n else {
            throw DataError.invalid(s.imagesFile, reason: "cannot keep \(validationCount) of \(n) images for validation")
        }
        let order = Dataset.permutation(count: n, seed: seed)
        let train = makeDataset(s.images, s.labels, rows: Array(order[validationCount...]).sorted(), flatten: flatten, on: device)
        let validation = makeDataset(s.images, s.labels, rows: Array(order[..<validationCount]).sorted(), flatten: flatten, on: device)
        return (train, validation)
    }

    /// Byte images (every MNIST-family file) stay bytes on the host, one byte a pixel, converted to Float and
    /// scaled by 1/255 one batch at a time (see `Dataset.init(bytes:shape:scale:targets:)`). Other element
    /// types are converted to Float in chunks written straight into one device tensor.
    static func makeDataset(_ images: IDXArray, _ labels: IDXArray, rows: [Int], flatten: Bool, on device: Device) -> Dataset {
        let h = images.shape[1], w = images.shape[2], size = h * w
        let all = labels.floats()   // checked by readSplit: whole numbers in 0..<classes
        let targets = Tensor(rows.map { all[$0] }, on: device)
        targets.labelClasses = Int(all.max() ?? 0) + 1   // whole numbers >= 0, so all below this
        if images.type == .uint8 {
            let shape = flatten ? [rows.count, size] : [rows.count, h, w]
            let inOrder = rows.count == images.count && rows.elementsEqual(0..<images.count)
            let bytes = inOrder ? images.payload : images.payload.withUnsafeBufferPointer { p in
                [UInt8](unsafeUninitializedCapacity: rows.count * size) { out, initialized in
                    for (k, r) in rows.enumerated() {
                        UnsafeMutableRawPointer(out.baseAddress! + k * size).copyMemory(from: p.baseAddress! + r * size, byteCount: size)
                    }
                    initialized = rows.count * size
                }
            }
            return try! Dataset(bytes: bytes, shape: shape, scale: 1 / 255, targets: targets)
        }
        let features = Tensor.empty(flatten ? [rows.count, size] : [rows.count, h, w], on: device)
        let bytesPerImage = size * images.type.size
        images.payload.withUnsafeBufferPointer { p in
            features.uploadRows(rows.count, rowSize: size) { range, chunk in
                for (k, r) in rows[range].enumerated() {
                    let v = IDXArray(shape: [size], type: images.type,
                                     payload: Array(p[(r * bytesPerImage)..<((r + 1) * bytesPerImage)])).floats()
                    for j in 0..<size { chunk[k * size + j] = v[j] }
                }
            }
        }
        return try! Dataset(unchecked: features, targets: targets)   // pixels checked by readSplit
    }
}
