import COpenCL
import Foundation

// The programs of an OpenCL device: one per kernel file (common.cl, the files it requires, then the file), built on
// the first launch of one of its kernels through the on-disk program cache (ProgramCache.swift), and one per
// parameterised GEMM variant (Kernels/gemm_tuned.cl with the variant's defines); the kernels created from them,
// keyed by `KernelReference`; and the device's GEMM tuning table.

extension OpenCLBackend {
    /// The program source of one kernel file: common.cl, the files it names on a `// requires: a.cl, b.cl` line
    /// (whose helpers it uses), then the file.
    func programSource(_ file: (name: String, text: String)) -> String {
        let required = KernelLibrary.requirements(of: file.text).compactMap { name in
            programFiles.first { $0.name == name }.map { ($0.name, $0.text) }
        }
        let source = KernelLibrary.join([("common.cl", commonSource)] + required + [(file.name, file.text)])
        return roundsLaunches ? "#define MYELIN_ROUNDED_LAUNCHES\n" + source : source
    }

    /// Throws `DeviceError.kernelsDirectory` when the programs built from `folder` lack a kernel that the built-in
    /// kernels define (a file edited so that a kernel is gone would otherwise trap at the kernel's first use).
    func checkKernels(from folder: String) throws {
        let reference = try ProgramCache.build(context: context, info: info, source: KernelLibrary.join(KernelLibrary.embedded),
                                               directory: cacheDirectory).program
        let expected = ProgramCache.kernelNames(reference)
        clReleaseProgram(reference)
        let missing = expected.subtracting(filePrograms.values.reduce(into: Set<String>()) { $0.formUnion($1.kernels) }).sorted()
        guard missing.isEmpty else {
            throw DeviceError.kernelsDirectory(folder, problem: "its kernels lack \(missing.joined(separator: ", ")) (the built-in kernels define them)")
        }
    }

    /// Builds `source` for this device through the program cache, then releases the program; tells whether
    /// it came from the cache. Throws `DeviceError.buildFailed` with the build log when the source does not compile.
    func buildProgram(source: String) throws -> Bool {
        let built = try ProgramCache.build(context: context, info: info, source: source, directory: cacheDirectory)
        clReleaseProgram(built.program)
        return built.fromCache
    }

    /// Releases a program (tests build programs through `ProgramCache.build` and give them back here).
    static func releaseProgram(_ program: cl_program) { clReleaseProgram(program) }

    /// The kernel `reference.name` of its program (built on first use, through the program cache). Nil when the
    /// program does not build on this device: that is recorded (`DeviceError.buildFailed` with the build log,
    /// thrown at the next `item()` or `Device.check()`). A name the program does not define stops the program with a
    /// message naming the program and where its kernels came from.
    func kernel(_ reference: KernelReference) -> cl_kernel? {
        if let k = kernels[reference] { return k }
        let program: cl_program
        if let variant = reference.program.variant {
            do {
                program = try variantProgram(variant)
            } catch {
                fatalError("\(name): the GEMM variant program \(variant.defines) does not build: \(error)")
            }
        } else {
            guard programFiles.contains(where: { $0.name == reference.program.file }) else {
                fatalError("\(name): no kernel file \(reference.program.file) for kernel '\(reference.name)'")
            }
            guard let built = fileProgram(reference.program.file) else { return nil }
            program = built.program
        }
        var err: cl_int = 0
        guard let k = clCreateKernel(program, reference.name, &err), err == CL_SUCCESS else {
            let origin = kernelsDirectory.map { "built from MYELIN_KERNELS_DIR=\($0)" } ?? "built into Myelin"
            fatalError("\(name): kernel '\(reference.name)' is missing from the program of \(reference.program) "
                       + "\(origin): \(openCLErrorName(err))")
        }
        kernels[reference] = k
        return k
    }

    /// The program of kernel file `name` (built through the program cache on first use), or nil when it does not
    /// build on this device (recorded once).
    func fileProgram(_ name: String) -> (program: cl_program, kernels: Set<String>)? {
        lock.lock(); defer { lock.unlock() }
        if let built = filePrograms[name] { return built }
        if unbuiltFiles[name] != nil { return nil }
        guard let file = programFiles.first(where: { $0.name == name }) else { return nil }
        do {
            let program = try ProgramCache.build(context: context, info: info, source: programSource(file),
                                                 directory: cacheDirectory).program
            let built = (program: program, kernels: ProgramCache.kernelNames(program))
            filePrograms[name] = built
            return built
        } catch {
            let failed = error as? DeviceError ?? .commandFailed(device: self.name, detail: "\(name) does not build: \(error)")
            unbuiltFiles[name] = failed
            if failure == nil {
                failure = failed
                FileHandle.standardError.write(Data("myelin: \(self.name): the kernels of \(name) do not build: \(failed)\n".utf8))
            }
            return nil
        }
    }

    /// The kernel names of every file's program, building those not built yet (tests check that every kernel
    /// runs).
    func allKernelNames() -> Set<String> {
        programFiles.reduce(into: Set<String>()) { names, file in
            if let built = fileProgram(file.name) { names.formUnion(built.kernels) }
        }
    }

    /// The kernel files whose programs have been built so far.
    var builtProgramFiles: [String] {
        lock.lock(); defer { lock.unlock() }
        return filePrograms.keys.sorted()
    }

    /// The program of the parameterised GEMM kernels of `variant` (whatever its K-split), through the program
    /// cache.
    func variantProgram(_ variant: GemmVariant) throws -> cl_program {
        lock.lock(); defer { lock.unlock() }
        let key = variant.withoutSplit
        if let p = variantPrograms[key] { return p }
        let source = try KernelLibrary.gemmVariantSource(kernelsDirectory: kernelsDirectory)
        let built = try ProgramCache.build(context: context, info: info, source: source, directory: cacheDirectory,
                                           defines: key.defines).program
        variantPrograms[key] = built
        return built
    }

    /// Whether the GEMM variant builds on this device and its kernels fit the device's limits (checked once).
    func variantUsable(_ v: GemmVariant) -> Bool {
        lock.lock(); defer { lock.unlock() }
        if unusableVariants[v] != nil { return false }
        if variantPrograms[v.withoutSplit] != nil { return true }
        guard v.fits(limits) else {
            unusableVariants[v] = "its work-group or local memory exceeds the device's limits"
            return false
        }
        do {
            _ = try variantProgram(v)
        } catch {
            unusableVariants[v] = "\(error)"
            return false
        }
        if let wg = v.workGroup, wg.reduce(1, *) > workGroupLimit(.gemmVariant(v), v.mainKernel) {
            unusableVariants[v] = "its work-group exceeds the kernel's CL_KERNEL_WORK_GROUP_SIZE"
            return false
        }
        if kernelLocalMemory(.gemmVariant(v), v.mainKernel) > limits.localMemorySize {
            unusableVariants[v] = "its kernel's CL_KERNEL_LOCAL_MEM_SIZE exceeds the device's local memory"
            return false
        }
        return true
    }

    /// The device's current GEMM tuning table (read once; nil when there is none, it is stale, or
    /// `MYELIN_TUNING=off`).
    var gemmTuningTable: GemmTuningTable? {
        lock.lock(); defer { lock.unlock() }
        if let known = tuningTable { return known }
        var table: GemmTuningTable? = nil
        let env = ProcessInfo.processInfo.environment
        if !GemmTuner.tableDisabled(env), let files = try? KernelLibrary.sourceFiles(kernelsDirectory: kernelsDirectory),
           case .current(let t) = GemmTuningTable.lookup(for: info, directory: cacheDirectory,
                                                         sourceHash: GemmTuningTable.sourceHash(files)) {
            table = t
        }
        tuningTable = .some(table)
        return table
    }

    /// Forgets the table read, so that the next product reads it again (after `myelin tune` wrote it).
    func reloadTuningTable() {
        lock.lock(); defer { lock.unlock() }
        tuningTable = nil
    }
}
