//! Compiles `kernels/*.cu` when the `cuda` feature is on: each kernel file becomes PTX for
//! compute_80 (any GPU from Ampere on, JIT-compiled by the driver) and a fatbin holding
//! sm_90 machine code (Hopper) plus that PTX; both are embedded in the binary. Without the
//! feature nvcc is never called. A kernel that fails to compile fails the build; a missing
//! nvcc does too when `KERNELS_REQUIRE_NVCC=1` (CI), and otherwise builds a binary whose
//! CUDA backend reports that its kernels were not compiled.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=kernels");
    for var in [
        "NVCC",
        "CUDA_HOME",
        "CUDA_PATH",
        "KERNELS_REQUIRE_NVCC",
        "PATH",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    println!("cargo::rustc-check-cfg=cfg(popsweep_kernels)");
    if env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let required = env::var("KERNELS_REQUIRE_NVCC").is_ok_and(|v| v == "1");
    let Some(nvcc) = find_nvcc() else {
        if required {
            panic!("KERNELS_REQUIRE_NVCC=1 but no nvcc found (looked at $NVCC, $CUDA_HOME/bin, $CUDA_PATH/bin, PATH)");
        }
        println!("cargo::warning=feature cuda without nvcc: kernels not compiled; the CUDA backend will say so at run time");
        return;
    };
    let mut sources: Vec<PathBuf> = std::fs::read_dir("kernels")
        .expect("kernels/ exists")
        .map(|e| e.expect("kernels/ is readable").path())
        .filter(|p| p.extension().is_some_and(|x| x == "cu"))
        .collect();
    sources.sort();
    let mut table = String::from("/// (module name, fatbin with sm_90 code, compute_80 PTX)\npub const MODULES: &[(&str, &[u8], &str)] = &[\n");
    for src in &sources {
        let name = src.file_stem().unwrap().to_string_lossy().into_owned();
        let ptx = out.join(format!("{name}.ptx"));
        let fatbin = out.join(format!("{name}.fatbin"));
        run_nvcc(&nvcc, src, &["-ptx", "-arch=compute_80"], &ptx);
        let report = run_nvcc(
            &nvcc,
            src,
            &[
                "-fatbin",
                "-gencode=arch=compute_90,code=sm_90",
                "-gencode=arch=compute_80,code=compute_80",
                "-Xptxas=-v",
            ],
            &fatbin,
        );
        for line in ptxas_summary(&report) {
            println!("cargo::warning={name}.cu: {line}");
        }
        writeln!(
            table,
            "    ({name:?}, include_bytes!({:?}), include_str!({:?})),",
            fatbin.display().to_string(),
            ptx.display().to_string()
        )
        .unwrap();
    }
    table.push_str("];\n");
    std::fs::write(out.join("kernels.rs"), table).expect("OUT_DIR is writable");
    println!("cargo::rustc-cfg=popsweep_kernels");
}

/// `$NVCC`, then `$CUDA_HOME/bin/nvcc`, `$CUDA_PATH/bin/nvcc`, then the first on PATH.
fn find_nvcc() -> Option<PathBuf> {
    if let Some(p) = env::var_os("NVCC") {
        return Some(PathBuf::from(p));
    }
    let home = ["CUDA_HOME", "CUDA_PATH"]
        .iter()
        .filter_map(env::var_os)
        .map(|h| Path::new(&h).join("bin").join("nvcc"));
    let path = env::var_os("PATH")
        .map(|p| {
            env::split_paths(&p)
                .map(|d| d.join("nvcc"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    home.chain(path).find(|p| p.is_file())
}

/// Runs nvcc; panics with its output if it fails. Returns its stderr (the ptxas report).
fn run_nvcc(nvcc: &Path, src: &Path, args: &[&str], out: &Path) -> String {
    let result = Command::new(nvcc)
        .args(args)
        .args(["-O3", "-std=c++17", "-Ikernels", "-o"])
        .arg(out)
        .arg(src)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", nvcc.display()));
    let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
    if !result.status.success() {
        panic!(
            "nvcc failed on {}:\n{}{stderr}",
            src.display(),
            String::from_utf8_lossy(&result.stdout)
        );
    }
    stderr
}

/// One line per kernel entry for sm_90: registers, shared memory and spills.
fn ptxas_summary(report: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut entry: Option<String> = None;
    let mut spills = String::new();
    for line in report.lines() {
        if let Some(rest) = line.split("Compiling entry function '").nth(1) {
            entry = rest.split('\'').next().map(str::to_owned);
        } else if line.contains("spill stores") {
            spills = line
                .trim_start_matches("ptxas info    : ")
                .trim()
                .to_owned();
        } else if let (Some(name), true) = (&entry, line.contains("Used ")) {
            let used = line.split("Used ").nth(1).unwrap_or("").trim();
            lines.push(format!("{name}: {used}; {spills}"));
            entry = None;
        }
    }
    lines
}
