//! Which instruction set the fast CPU kernels use.
//!
//! Natively the choice is made at run time, once: AVX-512 with VNNI (`vpdpbusd`,
//! 64 int8 multiply-adds per instruction), else AVX2+FMA, else portable Rust.
//! In wasm32 it is fixed when the module is compiled: `simd128` (and
//! `relaxed-simd` for the integer dot product) when the build enables them,
//! else portable. `CAIRN_CPU_ISA=portable|avx2|avx512` lowers the native
//! choice (never raises it past what the CPU has), for benchmarks and tests.

/// A family of kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// Plain Rust, auto-vectorised where the compiler can: every target.
    Portable,
    /// wasm32 `simd128`, with `relaxed-simd` integer dot products when compiled in.
    Wasm,
    /// x86-64 AVX2 + FMA.
    Avx2,
    /// x86-64 AVX-512 F/BW/VL with VNNI.
    Avx512,
}

impl Isa {
    /// A short name for reports ("avx512-vnni", "avx2", "wasm-simd128", ...).
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Wasm if cfg!(target_feature = "relaxed-simd") => "wasm-relaxed-simd",
            Isa::Wasm => "wasm-simd128",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512-vnni",
        }
    }

    /// Whether this machine can run the kernels of `self`.
    pub fn supported(self) -> bool {
        match self {
            Isa::Portable => true,
            Isa::Wasm => cfg!(all(target_arch = "wasm32", target_feature = "simd128")),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                Isa::Avx2.supported()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => false,
        }
    }

    /// Every kernel family, fastest last.
    pub const ALL: [Isa; 4] = [Isa::Portable, Isa::Wasm, Isa::Avx2, Isa::Avx512];

    /// The best family this machine supports, lowered by `CAIRN_CPU_ISA` when set (native).
    pub fn best() -> Isa {
        let best = Isa::ALL.into_iter().rev().find(|i| i.supported()).unwrap_or(Isa::Portable);
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(cap) = std::env::var("CAIRN_CPU_ISA").ok().and_then(|v| Isa::parse(&v)) {
            return best.min(cap);
        }
        best
    }

    /// Parses a name as `CAIRN_CPU_ISA` spells it.
    pub fn parse(s: &str) -> Option<Isa> {
        match s {
            "portable" => Some(Isa::Portable),
            "wasm" => Some(Isa::Wasm),
            "avx2" => Some(Isa::Avx2),
            "avx512" | "avx512-vnni" => Some(Isa::Avx512),
            _ => None,
        }
    }
}
