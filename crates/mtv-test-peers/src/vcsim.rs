//! vcsim, govmomi's vSphere simulator: a real vim25 SOAP server over HTTPS with a self-signed
//! certificate, built from Debian's packages by `scripts/build-vcsim.sh` (which
//! `scripts/install-test-deps.sh` runs).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::workspace_root;

/// A running vcsim on a free loopback port; killed when dropped.
pub struct Vcsim {
    child: Child,
    url: String,
}

impl Drop for Vcsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The vcsim binary: `$MTV_TEST_VCSIM`, else `vcsim/vcsim` in the workspace's target directory.
pub fn vcsim_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MTV_TEST_VCSIM") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let target = if target.is_relative() {
        workspace_root().join(target)
    } else {
        target
    };
    target.join("vcsim/vcsim")
}

impl Vcsim {
    /// Starts vcsim on a free loopback port with `args` (credentials, `-template`, ...) after the
    /// listen address; panics with what to run when it is not built.
    pub fn start(args: &[&str]) -> Vcsim {
        let binary = vcsim_binary();
        assert!(
            binary.is_file(),
            "vcsim is not built ({} is missing): run scripts/install-test-deps.sh (it installs \
             golang-go and golang-github-vmware-govmomi-dev and runs scripts/build-vcsim.sh), or \
             point MTV_TEST_VCSIM at a vcsim binary",
            binary.display()
        );
        let mut child = Command::new(&binary)
            .args(["-listen", "127.0.0.1:0", "-exit-on-stdin-eof"])
            .args(args)
            // Our end of stdin closes when the test process dies, and vcsim follows.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("VCSIM_URL=") {
                    let _ = sender.send(url.to_string());
                    break;
                }
            }
        });
        let url = match receiver.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("{} printed no VCSIM_URL within 30 s", binary.display());
            }
        };
        Vcsim { child, url }
    }

    /// The SDK URL vcsim printed: `https://user:pass@127.0.0.1:PORT/sdk`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server alone, `https://127.0.0.1:PORT`: no credentials, no path.
    pub fn base(&self) -> String {
        let authority = self
            .url
            .trim_start_matches("https://")
            .split('/')
            .next()
            .unwrap_or_default();
        let host_port = authority.rsplit('@').next().unwrap_or(authority);
        format!("https://{host_port}")
    }
}
