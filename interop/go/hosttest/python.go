package hosttest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// RepoRoot walks up from the working directory to the tandem checkout (the directory that
// holds both Cargo.toml and python/pyproject.toml).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "Cargo.toml")) && fileExists(filepath.Join(dir, "python", "pyproject.toml")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no tandem checkout above the working directory (looked for Cargo.toml and python/pyproject.toml)")
		}
		dir = parent
	}
}

// Python is $TANDEM_PYTHON, else <repo>/.venv/bin/python (made by `make setup`).
func Python() (string, error) {
	if p := os.Getenv("TANDEM_PYTHON"); p != "" {
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, ".venv", "bin", "python")
	if !fileExists(p) {
		return "", fmt.Errorf("%s not found: run `make setup` (or set TANDEM_PYTHON)", p)
	}
	return p, nil
}

// PluginCommand is `python -m tandem plugin <args...>` run in dir, exec'd directly (no `sh -c`,
// so Kill reaches the Python process itself).
func PluginCommand(dir string, args ...string) (*exec.Cmd, error) {
	py, err := Python()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(py, append([]string{"-m", "tandem", "plugin"}, args...)...)
	cmd.Dir = dir
	return cmd, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
