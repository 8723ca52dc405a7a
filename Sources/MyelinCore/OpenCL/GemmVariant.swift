import Foundation

/// The parameters of a GPU-grade tile (`GemmVariant.frag`; Kernels/gemm_tuned.cl, `GEMM_FRAG`): `tm` x `tn` tiles of
/// C per work-group through k-major local tiles of depth `tk`, `wm` x `wn` outputs per work-item held as contiguous
/// `vector`-wide fragments, `vector`-wide global and local loads, and (`prefetch`) the next K tile loaded into
/// registers during the multiply-adds on the current one.
struct GemmFragmentTile: Hashable, Sendable {
    var tm: Int, tn: Int, tk: Int, wm: Int, wn: Int
    /// Width of the loads and of the output fragments: 1, 2 or 4.
    var vector: Int
    /// Whether the next K tile's global loads are issued before the multiply-adds on the current one.
    var prefetch: Bool
    /// K slices, as `GemmVariant.tile`'s (1: no split).
    var slices: Int = 1
    /// The transposes the program is built for (compile-time; the launch picks them from the product, and names
    /// leave them out).
    var transA = false, transB = false
}

/// One parameterised GEMM kernel of Kernels/gemm_tuned.cl: its own program, built with `defines`.
enum GemmVariant: Hashable, Sendable, CustomStringConvertible {
    /// CPU-style: packed panels, `mr` x (8 * `nv`) register blocks, K blocks of `kc` (0: all of K), `mb` row
    /// panels and `nb` column panels per work-item.
    case panel(mr: Int, nv: Int, kc: Int, mb: Int, nb: Int)
    /// GPU-style: `tm` x `tn` tiles of C per work-group through local memory of depth `tk`, `wm` x `wn` outputs
    /// per work-item. `slices` > 1 splits K: up to that many slices (of whole `tk` steps) each compute a partial
    /// product into a workspace, and a second kernel adds them in order and applies the epilogue (for products
    /// with few tiles of C and a long K, the `deep` class).
    case tile(tm: Int, tn: Int, tk: Int, wm: Int, wn: Int, slices: Int = 1)
    /// GPU-grade tiles (`GemmFragmentTile`): contiguous vector fragments, vector loads, unchecked interior tiles,
    /// compile-time transposes, optional register prefetch; the same K-split as `tile`.
    case frag(GemmFragmentTile)

    /// A GPU-grade tile (`frag`) with these parameters.
    static func frag(_ tm: Int, _ tn: Int, k tk: Int, w wm: Int, _ wn: Int, vector: Int = 4, prefetch: Bool = true,
                     slices: Int = 1) -> GemmVariant {
        .frag(GemmFragmentTile(tm: tm, tn: tn, tk: tk, wm: wm, wn: wn, vector: vector, prefetch: prefetch, slices: slices))
    }

    /// The name in tables, reports and `MYELIN_GEMM_KERNEL`: `panel:6x16:kc256:mb8:nb4`, `tile:64x64:k16:w4x4`,
    /// with a K-split `tile:32x32:k16:w4x4:s8`, and the GPU-grade tiles with their vector width and prefetch
    /// (`p1`: on), `tile:128x128:k16:w8x8:v4:p1` (`:s8` after them for a K-split).
    var description: String {
        switch self {
        case .panel(let mr, let nv, let kc, let mb, let nb): return "panel:\(mr)x\(8 * nv):kc\(kc):mb\(mb):nb\(nb)"
        case .tile(let tm, let tn, let tk, let wm, let wn, let slices):
            return "tile:\(tm)x\(tn):k\(tk):w\(wm)x\(wn)" + (slices > 1 ? ":s\(slices)" : "")
        case .frag(let f):
            return "tile:\(f.tm)x\(f.tn):k\(f.tk):w\(f.wm)x\(f.wn):v\(f.vector):p\(f.prefetch ? 1 : 0)"
                + (f.slices > 1 ? ":s\(f.slices)" : "")
        }
    }

    /// Parses `description`; nil for anything else or parameters outside what the kernels support.
    init?(name: String) {
        let parts = name.split(separator: ":").map(String.init)
        func pair(_ s: String, prefix: String = "") -> (Int, Int)? {
            guard s.hasPrefix(prefix) else { return nil }
            let d = s.dropFirst(prefix.count).split(separator: "x").compactMap { Int($0) }
            return d.count == 2 ? (d[0], d[1]) : nil
        }
        func number(_ s: String, prefix: String) -> Int? { s.hasPrefix(prefix) ? Int(s.dropFirst(prefix.count)) : nil }
        if parts.count == 5, parts[0] == "panel", let (mr, nr) = pair(parts[1]), nr % 8 == 0,
           let kc = number(parts[2], prefix: "kc"), let mb = number(parts[3], prefix: "mb"),
           let nb = number(parts[4], prefix: "nb") {
            self = .panel(mr: mr, nv: nr / 8, kc: kc, mb: mb, nb: nb)
        } else if (4...7).contains(parts.count), parts[0] == "tile", let (tm, tn) = pair(parts[1]),
                  let tk = number(parts[2], prefix: "k"), let (wm, wn) = pair(parts[3], prefix: "w") {
            let rest = Array(parts.dropFirst(4))
            let slices = rest.last.flatMap { number($0, prefix: "s") }
            let options = slices == nil ? rest : Array(rest.dropLast())
            if options.isEmpty {
                self = .tile(tm: tm, tn: tn, tk: tk, wm: wm, wn: wn, slices: slices ?? 1)
            } else if options.count == 2, let vector = number(options[0], prefix: "v"),
                      let prefetch = number(options[1], prefix: "p"), prefetch == 0 || prefetch == 1 {
                self = .frag(tm, tn, k: tk, w: wm, wn, vector: vector, prefetch: prefetch == 1, slices: slices ?? 1)
            } else {
                return nil
            }
        } else {
            return nil
        }
        guard isWellFormed else { return nil }
    }

    /// Parameters the kernels accept: positive sizes, tiles divisible by the per-item block, at most 16 x 4
    /// float8 accumulators per panel block, 1 to 64 K slices; for GPU-grade tiles also a vector width of 1, 2 or 4
    /// dividing the per-item block and `tk`, and tiles of A and B that split into whole vector loads per item.
    var isWellFormed: Bool {
        switch self {
        case .panel(let mr, let nv, let kc, let mb, let nb):
            return (1...16).contains(mr) && (1...4).contains(nv) && kc >= 0 && mb >= 1 && nb >= 1
        case .tile(let tm, let tn, let tk, let wm, let wn, let slices):
            return tm > 0 && tn > 0 && tk > 0 && wm > 0 && wn > 0 && tm % wm == 0 && tn % wn == 0 && wm * wn <= 64
                && (1...64).contains(slices)
        case .frag(let f):
            guard GemmVariant.tile(tm: f.tm, tn: f.tn, tk: f.tk, wm: f.wm, wn: f.wn, slices: f.slices).isWellFormed,
                  [1, 2, 4].contains(f.vector), f.wm % f.vector == 0, f.wn % f.vector == 0, f.tk % f.vector == 0,
                  f.tk <= 64 else { return false }
            let threads = (f.tm / f.wm) * (f.tn / f.wn)
            return (f.tm * f.tk / f.vector) % threads == 0 && (f.tn * f.tk / f.vector) % threads == 0
        }
    }

    /// The build options that select and size the kernels.
    var defines: String {
        switch self {
        case .panel(let mr, let nv, let kc, let mb, let nb):
            return "-DGEMM_PANEL -DMR=\(mr) -DNV=\(nv) -DKC=\(kc) -DMB=\(mb) -DNB=\(nb)"
        case .tile(let tm, let tn, let tk, let wm, let wn, _):
            // The K-split kernels are in the same program: the slice count is an argument.
            return "-DGEMM_TILE -DTM=\(tm) -DTN=\(tn) -DTK=\(tk) -DWM=\(wm) -DWN=\(wn)"
        case .frag(let f):
            return "-DGEMM_FRAG -DTM=\(f.tm) -DTN=\(f.tn) -DTK=\(f.tk) -DWM=\(f.wm) -DWN=\(f.wn) -DVW=\(f.vector) "
                + "-DPREFETCH=\(f.prefetch ? 1 : 0) -DTRANS_A=\(f.transA ? 1 : 0) -DTRANS_B=\(f.transB ? 1 : 0)"
        }
    }

    /// The variant with one K slice: the program that holds its kernels (the slice count is an argument).
    var withoutSplit: GemmVariant { withSlices(1) }

    /// The same tiles with up to `slices` K slices (panels: unchanged).
    func withSlices(_ slices: Int) -> GemmVariant {
        switch self {
        case .panel: return self
        case .tile(let tm, let tn, let tk, let wm, let wn, _): return .tile(tm: tm, tn: tn, tk: tk, wm: wm, wn: wn, slices: slices)
        case .frag(var f): f.slices = slices; return .frag(f)
        }
    }

    /// A GPU-grade tile's program for these transposes (other variants take the transposes as arguments: unchanged).
    func specialised(transA: Bool, transB: Bool) -> GemmVariant {
        guard case .frag(var f) = self else { return self }
        f.transA = transA
        f.transB = transB
        return .frag(f)
    }

    /// The programs a warm-up builds for the variant: one, or one per transpose for a GPU-grade tile.
    var programs: [GemmVariant] {
        guard case .frag = self else { return [withoutSplit] }
        return [(false, false), (true, false), (false, true), (true, true)].map {
            withoutSplit.specialised(transA: $0.0, transB: $0.1)
        }
    }

    /// The tile of C and the K depth of a tile variant (nil for panels).
    var tileSize: (tm: Int, tn: Int, tk: Int)? {
        switch self {
        case .panel: return nil
        case .tile(let tm, let tn, let tk, _, _, _): return (tm, tn, tk)
        case .frag(let f): return (f.tm, f.tn, f.tk)
        }
    }

    /// The K-split count asked for (1: none).
    var slices: Int {
        switch self {
        case .panel: return 1
        case .tile(_, _, _, _, _, let slices): return slices
        case .frag(let f): return f.slices
        }
    }

    /// The kernel that runs the variant's work-groups: `gemm_panel`, `gemm_tile` or `gemm_frag`, or
    /// `gemm_tile_split` / `gemm_frag_split` for a K-split.
    var mainKernel: String {
        switch self {
        case .panel: return "gemm_panel"
        case .tile: return slices > 1 ? "gemm_tile_split" : "gemm_tile"
        case .frag: return slices > 1 ? "gemm_frag_split" : "gemm_frag"
        }
    }

    /// The K slices a product with `k` steps runs in: slices of whole `tk` steps, at most `slices` of them,
    /// none empty (1: no split); and the steps per slice.
    func kSlices(k: Int) -> (count: Int, length: Int) {
        guard let tk = tileSize?.tk, slices > 1, k > 0 else { return (1, k) }
        let length = ((k + slices - 1) / slices + tk - 1) / tk * tk
        return ((k + length - 1) / length, length)
    }

    /// The work-group a tile variant needs (`reqd_work_group_size`); nil for panels (any size).
    var workGroup: [Int]? {
        switch self {
        case .panel: return nil
        case .tile(let tm, let tn, _, let wm, let wn, _): return [tn / wn, tm / wm, 1]
        case .frag(let f): return [f.tn / f.wn, f.tm / f.wm, 1]
        }
    }

    /// Bytes of local memory a work-group uses.
    var localBytes: Int {
        switch self {
        case .panel: return 0
        case .tile(let tm, let tn, let tk, _, _, _): return 4 * tk * (tm + 1 + tn + 1)
        case .frag(let f): return 4 * f.tk * (f.tm + f.vector + f.tn + f.vector)
        }
    }

    /// Whether the variant fits the device's launch limits (work-group size after any cap, per-dimension sizes,
    /// local memory); the kernel's own `CL_KERNEL_WORK_GROUP_SIZE` is checked after its program is built.
    func fits(_ limits: LaunchLimits) -> Bool {
        guard isWellFormed else { return false }
        guard let wg = workGroup else { return true }
        let withinDimensions = wg.indices.allSatisfy { $0 >= limits.maxWorkItemSizes.count || wg[$0] <= limits.maxWorkItemSizes[$0] }
        return wg.reduce(1, *) <= limits.maxWorkGroupSize && withinDimensions && localBytes <= limits.localMemorySize
    }

    /// The panel variants `myelin tune` measures on CPU-type devices (register blocks for 16 AVX2 registers and
    /// for 32 AVX-512 ones, K blocks of 128 to 512, one without K blocking for small products, and the large blocks
    /// of C the defaults use with a packed A).
    static let panelCandidates: [GemmVariant] = [
        .panel(mr: 6, nv: 2, kc: 256, mb: 8, nb: 4), .panel(mr: 6, nv: 2, kc: 256, mb: 16, nb: 1),
        .panel(mr: 6, nv: 2, kc: 512, mb: 8, nb: 2), .panel(mr: 4, nv: 3, kc: 256, mb: 8, nb: 4),
        .panel(mr: 4, nv: 2, kc: 128, mb: 8, nb: 4), .panel(mr: 8, nv: 2, kc: 256, mb: 8, nb: 4),
        .panel(mr: 12, nv: 2, kc: 256, mb: 4, nb: 4), .panel(mr: 6, nv: 2, kc: 0, mb: 4, nb: 1),
        GemmDefaults.cpuWide,
    ]

    /// The tile variants `myelin tune` measures on GPU-type devices (work-groups of 64 and 256 items; those that
    /// do not fit a device are left out): the local-memory tiles, and the GPU-grade tiles along their axes (tile,
    /// vector width, K depth and prefetch).
    static let tileCandidates: [GemmVariant] = [
        .tile(tm: 32, tn: 32, tk: 16, wm: 4, wn: 4), .tile(tm: 64, tn: 64, tk: 16, wm: 8, wn: 8),
        .tile(tm: 64, tn: 64, tk: 16, wm: 4, wn: 4), .tile(tm: 128, tn: 128, tk: 8, wm: 8, wn: 8),
        .tile(tm: 128, tn: 64, tk: 16, wm: 8, wn: 4), .tile(tm: 64, tn: 64, tk: 8, wm: 4, wn: 4),
        .tile(tm: 16, tn: 16, tk: 16, wm: 2, wn: 2), .tile(tm: 32, tn: 32, tk: 8, wm: 2, wn: 2),
    ] + fragCandidates

    /// The GPU-grade tiles `myelin tune` measures: the four the defaults use, then the 128 x 128 tile along each
    /// axis (vector width 2 and 1, K depth 8 and 32, no prefetch) and 128 x 64 without prefetch.
    static let fragCandidates: [GemmVariant] = GemmDefaults.fragTiles + [
        .frag(128, 128, k: 16, w: 8, 8, vector: 2), .frag(128, 128, k: 16, w: 8, 8, vector: 1),
        .frag(128, 128, k: 8, w: 8, 8), .frag(128, 128, k: 32, w: 8, 8),
        .frag(128, 128, k: 16, w: 8, 8, prefetch: false), .frag(128, 64, k: 16, w: 8, 8, prefetch: false),
    ]

    /// The K-split tile variants `myelin tune` measures for the `deep` class, on every device type (a product
    /// with a few tiles of C leaves most of a GPU idle, and most of a CPU's cores too, without them).
    static let splitCandidates: [GemmVariant] = [
        .tile(tm: 32, tn: 32, tk: 16, wm: 4, wn: 4, slices: 4), .tile(tm: 32, tn: 32, tk: 16, wm: 4, wn: 4, slices: 8),
        .tile(tm: 32, tn: 32, tk: 16, wm: 4, wn: 4, slices: 16), .tile(tm: 64, tn: 64, tk: 16, wm: 4, wn: 4, slices: 8),
        .tile(tm: 64, tn: 64, tk: 16, wm: 8, wn: 8, slices: 16), .tile(tm: 16, tn: 16, tk: 16, wm: 2, wn: 2, slices: 16),
        .frag(64, 64, k: 16, w: 4, 4, slices: 8), .frag(32, 32, k: 16, w: 4, 4, slices: 16),
    ]
}
