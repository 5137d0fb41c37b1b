//! Finding the Python interpreter that runs tandem's Python side.

use std::path::{Path, PathBuf};

/// The interpreter tandem starts by default: `$TANDEM_PYTHON`, else the `.venv/bin/python` of the
/// current directory or one of its parents (the project's set-up makes one), else `python3` on
/// `PATH`.
pub fn default_python() -> PathBuf {
    if let Some(p) = std::env::var_os("TANDEM_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Ok(cwd) = std::env::current_dir() {
        if let Some(p) = find_venv_python(&cwd) {
            return p;
        }
    }
    PathBuf::from("python3")
}

fn find_venv_python(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(".venv/bin/python"))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_venv_in_a_parent() {
        let root = std::env::temp_dir().join(format!("tandem-venv-{}", std::process::id()));
        let bin = root.join(".venv/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("python"), "").unwrap();
        let nested = root.join("a/b");
        std::fs::create_dir_all(&nested).unwrap();
        assert_eq!(find_venv_python(&nested), Some(bin.join("python")));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
